package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// Machine describes where a benchmark ran.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryMB  int64  `json:"memoryMB"`
	Go        string `json:"go"`
	Kernel    string `json:"kernel"`
	OS        string `json:"os"`
	Dir       string `json:"dir"`        // where the databases were
	FS        string `json:"filesystem"` // its file system type, device and mount options
	Revision  string `json:"revision"`   // the commit the benchmark was built from
	LoadStart string `json:"loadStart"`  // /proc/loadavg when the run began
	LoadEnd   string `json:"loadEnd"`    // and when it ended
}

// Describe returns the machine the process runs on, with the file system
// of dir.
func Describe(ctx context.Context, dir string) Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, Dir: dir}
	m.CPU = firstField("/proc/cpuinfo", "model name")
	if kb, err := strconv.ParseInt(strings.TrimSuffix(firstField("/proc/meminfo", "MemTotal"), " kB"), 10, 64); err == nil {
		m.MemoryMB = kb / 1024
	}
	m.Kernel = strings.TrimSpace(readFile("/proc/sys/kernel/osrelease"))
	m.FS = fileSystem(dir)
	m.LoadStart = loadAverage()
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if dirty {
			rev += "+dirty"
		}
		m.Revision = rev
	}
	if m.Revision == "" {
		m.Revision = gitRevision(ctx)
	}
	return m
}

// gitRevision returns the commit of the working directory's repository,
// +dirty when files are modified, or "".
func gitRevision(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		rev += "+dirty"
	}
	return rev
}

// loadAverage returns the load averages of /proc/loadavg (1, 5, 15 min).
func loadAverage() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}

// firstField returns the value of the first "key: value" line of a /proc
// file with that key.
func firstField(path, key string) string {
	for line := range strings.Lines(readFile(path)) {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// fileSystem returns the type, device and options of the mount that holds
// dir, from /proc/self/mounts.
func fileSystem(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	if p, err := filepath.EvalSymlinks(abs); err == nil {
		abs = p
	}
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return ""
	}
	defer f.Close()
	best, out := -1, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 4 {
			continue
		}
		mnt := fields[1]
		if abs != mnt && !strings.HasPrefix(abs, strings.TrimSuffix(mnt, "/")+"/") {
			continue
		}
		if len(mnt) > best {
			best, out = len(mnt), fields[2]+" on "+fields[0]+" ("+fields[3]+")"
		}
	}
	return out
}

// rssMB returns the resident memory of process pid (VmRSS) and its peak
// (VmHWM), in MB, from /proc/PID/status.
func rssMB(pid int) (rss, peak float64, err error) {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	status, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: resident memory: %w", err)
	}
	kb := func(key string) float64 {
		for line := range strings.Lines(string(status)) {
			k, v, ok := strings.Cut(line, ":")
			if ok && k == key {
				f, perr := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				if perr == nil {
					return f / 1024
				}
				err = fmt.Errorf("bench: resident memory: %s of %s: %w", key, path, perr)
				return 0
			}
		}
		err = fmt.Errorf("bench: resident memory: no %s in %s", key, path)
		return 0
	}
	rss, peak = kb("VmRSS"), kb("VmHWM")
	return rss, peak, err
}

// cpuSeconds returns the CPU time (user and system) process pid has used,
// from /proc/PID/stat (pid 0: this process).
func cpuSeconds(pid int) float64 {
	path := "/proc/self/stat"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/stat"
	}
	st := readFile(path)
	i := strings.LastIndexByte(st, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(st[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100 // USER_HZ is 100 on Linux
}
