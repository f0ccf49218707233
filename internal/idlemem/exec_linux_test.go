package idlemem

import (
	"bufio"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

func TestReadOnlyMappings(t *testing.T) {
	const exe = "/opt/authd dir/bin/authd"
	maps := strings.Join([]string{
		"00400000-017c1000 r-xp 00000000 fe:00 10027103                           /opt/authd dir/bin/authd",
		"017c1000-02cb5000 r--p 013c1000 fe:00 10027103                           /opt/authd dir/bin/authd",
		"02cb5000-02d87000 rw-p 028b5000 fe:00 10027103                           /opt/authd dir/bin/authd",
		"02d87000-02dc0000 rw-p 00000000 00:00 0 ",
		"7f0000000000-7f0000100000 r--p 00000000 fe:00 20000                      /usr/lib/locale/C.utf8",
		"7f0000200000-7f0000300000 r-xp 00000000 fe:00 10027104                   /opt/authd dir/bin/authd (deleted)",
		"7f0000400000-7f0000500000 r--s 00000000 fe:00 10027103                   /opt/authd dir/bin/authd",
		"7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]",
		"zzzz-0010 r-xp 00000000 fe:00 10027103                                   /opt/authd dir/bin/authd",
	}, "\n")
	got := readOnlyMappings(strings.NewReader(maps), exe)
	want := []span{{0x400000, 0x17c1000}, {0x17c1000, 0x2cb5000}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("readOnlyMappings = %x; want %x", got, want)
	}
}

// rssFileKiB reads the resident pages of the executable's read-only
// mappings from /proc/self/smaps.
func rssFileKiB(t *testing.T) int {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if fs := strings.Fields(line); len(fs) >= 5 && strings.Contains(fs[0], "-") && !strings.HasSuffix(fs[0], ":") {
			in = (fs[1] == "r-xp" || fs[1] == "r--p") && strings.HasSuffix(line, " "+exe)
			continue
		}
		if in && strings.HasPrefix(line, "Rss:") {
			n, _ := strconv.Atoi(strings.Fields(line)[1])
			total += n
		}
	}
	return total
}

// The test binary's own code pages leave its RSS and the process goes on
// running code from them.
func TestDropExecutablePages(t *testing.T) {
	// Touch code the measurement itself does not run, as init does.
	if _, err := json.Marshal(map[string]any{"a": []int{1}, "b": regexp.MustCompile(`^a+(b|c)*$`).String()}); err != nil {
		t.Fatal(err)
	}
	before := rssFileKiB(t)
	if before == 0 {
		t.Skip("no resident pages of the executable found in /proc/self/smaps")
	}
	dropExecutablePages()
	after := rssFileKiB(t)
	if after > before*3/4 {
		t.Errorf("resident read-only pages of the executable: %d KiB before, %d KiB after; want a quarter fewer at least", before, after)
	}
	if s := strconv.Itoa(42); s != "42" { // code runs on from re-faulted pages
		t.Errorf("Itoa(42) = %q", s)
	}
}
