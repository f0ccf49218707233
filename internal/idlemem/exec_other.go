//go:build !linux

package idlemem

// dropExecutablePages does nothing outside Linux.
func dropExecutablePages() {}
