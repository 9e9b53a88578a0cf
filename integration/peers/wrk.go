package peers

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Sample is one load-generator run against one system.
type Sample struct {
	// ReqPerSec is wrk's "Requests/sec".
	ReqPerSec float64
	// P50 and P99 are wrk's latency percentiles (--latency).
	P50, P99 time.Duration
	// Requests is how many requests completed.
	Requests int64
	// Errors is wrk's report of socket errors and non-2xx/3xx responses,
	// empty when there were none.
	Errors string
	// CPU is the server's user+system CPU time during the run.
	CPU time.Duration
}

// ParseWrk reads the output of wrk run with --latency.
func ParseWrk(out string) (Sample, error) {
	var s Sample
	var have struct{ rps, p50, p99, n bool }
	var errs []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		var err error
		switch {
		case strings.HasPrefix(line, "Requests/sec:") && len(f) == 2:
			s.ReqPerSec, err = strconv.ParseFloat(f[1], 64)
			have.rps = true
		case len(f) == 2 && f[0] == "50%":
			s.P50, err = parseWrkDuration(f[1])
			have.p50 = true
		case len(f) == 2 && f[0] == "99%":
			s.P99, err = parseWrkDuration(f[1])
			have.p99 = true
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			s.Requests, err = strconv.ParseInt(f[0], 10, 64)
			have.n = true
		case strings.HasPrefix(line, "Socket errors:"), strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			errs = append(errs, line)
		}
		if err != nil {
			return Sample{}, fmt.Errorf("peers: wrk output line %q: %w", line, err)
		}
	}
	if !have.rps || !have.p50 || !have.p99 || !have.n {
		return Sample{}, fmt.Errorf("peers: wrk output lacks Requests/sec, the 50%%/99%% latencies or the request count (run with --latency):\n%s", out)
	}
	s.Errors = strings.Join(errs, "; ")
	return s, nil
}

// parseWrkDuration reads wrk's durations: a number and us, ms, s, m or h.
func parseWrkDuration(v string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(v, u.suffix); ok {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil || f < 0 {
				return 0, fmt.Errorf("bad duration %q", v)
			}
			return time.Duration(f * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("duration %q has no unit", v)
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, which
// Linux fixes at 100 for user space on every architecture it exports it.
const userHZ = 100

// ProcCPU returns the user+system CPU time a process has used, from
// /proc/<pid>/stat (utime and stime, fields 14 and 15 of proc(5)).
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcStat(string(b))
}

func parseProcStat(stat string) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces and
	// parentheses itself: the fields that follow start after the last ')'.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("peers: /proc stat %q: no command name", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("peers: /proc stat %q: %d fields after the name; want at least 13", stat, len(f))
	}
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("peers: /proc stat: utime %q, stime %q: not numbers", f[11], f[12])
	}
	return time.Duration(utime+stime) * time.Second / userHZ, nil
}

// LoadAvg returns the 1, 5 and 15 minute load averages from /proc/loadavg.
func LoadAvg() (string, error) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "", fmt.Errorf("peers: /proc/loadavg %q: want three load averages", b)
	}
	return strings.Join(f[:3], " "), nil
}
