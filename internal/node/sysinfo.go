package node

import (
	"bufio"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

var (
	sysOnce   sync.Once
	sysMem    int64
	sysKernel string
)

func readSysInfo() {
	sysOnce.Do(func() {
		sysMem = 8 << 30
		if f, err := os.Open("/proc/meminfo"); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				fields := strings.Fields(sc.Text())
				if len(fields) >= 2 && fields[0] == "MemTotal:" {
					if kb, err := strconv.ParseInt(fields[1], 10, 64); err == nil {
						sysMem = kb * 1024
					}
				}
			}
			f.Close()
		}
		var u unix.Utsname
		if err := unix.Uname(&u); err == nil {
			sysKernel = unix.ByteSliceToString(u.Release[:])
		}
	})
}

// memTotal is the machine's memory in bytes.
func memTotal() int64 { readSysInfo(); return sysMem }

// kernelVersion is the running kernel's release.
func kernelVersion() string { readSysInfo(); return sysKernel }

// diskTotal is the size of the filesystem holding dir, in bytes.
func diskTotal(dir string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0
	}
	return int64(st.Blocks) * int64(st.Bsize)
}

func jsonMarshal(v interface{}) ([]byte, error) { return json.Marshal(v) }
