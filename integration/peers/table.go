package peers

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Row is one system at one page size, with a sample from every round.
type Row struct {
	System  System
	Size    int
	Samples []Sample
	// Builds is how many times the handler had built the page after the
	// rounds, or -1 where it was not asked.
	Builds int
}

// ReqPerSec is the median of the rounds' requests per second.
func (r Row) ReqPerSec() float64 {
	return median(r.Samples, func(s Sample) float64 { return s.ReqPerSec })
}

// CPUPerRequest is the median of the rounds' server CPU time per request.
func (r Row) CPUPerRequest() time.Duration {
	return time.Duration(median(r.Samples, func(s Sample) float64 {
		if s.Requests == 0 {
			return 0
		}
		return float64(s.CPU) / float64(s.Requests)
	}))
}

// Ratio is r's req/s as a ratio to l's: the median over the rounds of the
// ratio within each round, where the two ran one after the other (the
// machine's load moves whole rounds), or, when their rounds differ in
// number, the ratio of their medians.
func Ratio(r, l Row) float64 {
	if len(r.Samples) != len(l.Samples) || len(r.Samples) == 0 {
		return r.ReqPerSec() / l.ReqPerSec()
	}
	per := make([]Sample, len(r.Samples))
	for i, s := range r.Samples {
		if l.Samples[i].ReqPerSec > 0 {
			per[i].ReqPerSec = s.ReqPerSec / l.Samples[i].ReqPerSec
		}
	}
	return median(per, func(s Sample) float64 { return s.ReqPerSec })
}

func median(samples []Sample, f func(Sample) float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	v := make([]float64, len(samples))
	for i, s := range samples {
		v[i] = f(s)
	}
	slices.Sort(v)
	if n := len(v); n%2 == 1 {
		return v[n/2]
	} else {
		return (v[n/2-1] + v[n/2]) / 2
	}
}

// WriteTable writes rows as one markdown table: for each system (named by
// its module path) and page size, the medians over the rounds of req/s,
// p50 and p99 latency and server CPU per request, and req/s as a ratio to
// the static Echo handler and to the system's limit (its store's bare
// client, or its server's static handler), each the median of the rounds'
// ratios (see Ratio). Runs where wrk saw errors, and
// caches that built the page more than once, are listed under the table.
func WriteTable(w io.Writer, rows []Row) error {
	find := func(key string, size int) (Row, bool) {
		for _, r := range rows {
			if r.System.Key == key && r.Size == size {
				return r, true
			}
		}
		return Row{}, false
	}
	ratio := func(r Row, key string) string {
		if key == "" {
			return "(limit)"
		}
		l, ok := find(key, r.Size)
		if !ok || l.ReqPerSec() == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", Ratio(r, l))
	}
	var b strings.Builder
	b.WriteString("| body | system | what | req/s | p50 | p99 | server CPU µs/req | × static | × limit |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|\n")
	var notes []string
	for _, r := range rows {
		p50 := median(r.Samples, func(s Sample) float64 { return float64(s.P50) })
		p99 := median(r.Samples, func(s Sample) float64 { return float64(s.P99) })
		toStatic := ratio(r, "echo")
		if r.System.Key == "echo" {
			toStatic = "1.00"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s | %s | %.1f | %s | %s |\n",
			SizeName(r.Size), r.System.Module, r.System.What, thousands(r.ReqPerSec()),
			latency(time.Duration(p50)), latency(time.Duration(p99)),
			float64(r.CPUPerRequest())/float64(time.Microsecond), toStatic, ratio(r, r.System.Limit))
		if r.Builds > 1 && r.System.Builds(2) == 1 {
			notes = append(notes, fmt.Sprintf("- %s, %s: the handler built the page %d times (want 1): a store call failed (or was abandoned with a request wrk dropped at the end of a run) and the request fell through to the handler", r.System.Key, SizeName(r.Size), r.Builds))
		}
		for i, s := range r.Samples {
			if s.Errors != "" {
				notes = append(notes, fmt.Sprintf("- %s, %s, round %d: %s", r.System.Key, SizeName(r.Size), i+1, s.Errors))
			}
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nNotes:\n\n" + strings.Join(notes, "\n") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// SizeName names a page size: "2 KiB", "64 KiB", or bytes.
func SizeName(n int) string {
	if n%1024 == 0 {
		return strconv.Itoa(n/1024) + " KiB"
	}
	return strconv.Itoa(n) + " B"
}

func latency(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", ms)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", ms)
	}
	return fmt.Sprintf("%d µs", d.Microseconds())
}

// thousands formats a rate as an integer with comma separators.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
