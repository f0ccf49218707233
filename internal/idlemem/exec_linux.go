package idlemem

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// span is one mapping of /proc/self/maps.
type span struct{ start, end uintptr }

// dropExecutablePages tells the kernel (madvise MADV_DONTNEED) that the
// process no longer needs the resident pages of its executable's read-only
// private mappings: code (r-xp) and constants (r--p), never written, so the
// page cache holds exactly what a later access maps again. The writable data
// segment is never touched. Errors are ignored: the advice is an
// optimisation, and nothing is lost without it.
func dropExecutablePages() {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	spans := readOnlyMappings(f, exe)
	f.Close()
	for _, s := range spans {
		_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, s.start, s.end-s.start, syscall.MADV_DONTNEED)
	}
}

// readOnlyMappings returns the private read-only mappings of the file exe
// in a /proc/PID/maps listing: its code and its constants, not its data,
// nor any mapping of another file or of a replaced (deleted) executable.
func readOnlyMappings(maps io.Reader, exe string) []span {
	var out []span
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		// address perms offset dev inode path (the path may hold spaces)
		f := strings.SplitN(sc.Text(), " ", 6)
		if len(f) < 6 || (f[1] != "r-xp" && f[1] != "r--p") || strings.TrimLeft(f[5], " ") != exe {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || b <= a {
			continue
		}
		out = append(out, span{uintptr(a), uintptr(b)})
	}
	return out
}
