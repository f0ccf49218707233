package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// row is one line of the results: one op of one run (or the median of the runs).
type row struct {
	Scenario string            `json:"scenario"`
	Op       string            `json:"op"`
	Run      int               `json:"run"` // 0: median of the runs
	Seconds  float64           `json:"seconds"`
	Requests uint64            `json:"requests"`
	RPS      float64           `json:"rps"`
	MeanMS   float64           `json:"mean_ms"`
	P50MS    float64           `json:"p50_ms"`
	P90MS    float64           `json:"p90_ms"`
	P99MS    float64           `json:"p99_ms"`
	MaxMS    float64           `json:"max_ms"`
	Errors   map[string]uint64 `json:"errors"`
	Reseeds  int64             `json:"refresh_reseeds,omitempty"`
	RSSMiB   float64           `json:"server_rss_mib,omitempty"`      // after the run
	PeakMiB  float64           `json:"server_peak_rss_mib,omitempty"` // highest during the run
	LoadAvg  [3]float64        `json:"load_avg"`
}

// report is everything authbench prints.
type report struct {
	Issuer      string `json:"issuer"`
	Label       string `json:"label,omitempty"`
	CPUs        int    `json:"cpus"`
	Concurrency int    `json:"concurrency"`
	Duration    string `json:"duration"`
	DPoP        bool   `json:"dpop,omitempty"` // -dpop: token requests carried DPoP proofs
	Runs        []row  `json:"runs"`
	Medians     []row  `json:"medians,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func statsRow(scenario, opName string, run int, elapsed time.Duration, s *opStats) row {
	return row{
		Scenario: scenario, Op: opName, Run: run, Seconds: elapsed.Seconds(), Requests: s.hist.n,
		RPS:    float64(s.hist.n) / elapsed.Seconds(),
		MeanMS: ms(s.hist.mean()), P50MS: ms(s.hist.quantile(.50)), P90MS: ms(s.hist.quantile(.90)),
		P99MS: ms(s.hist.quantile(.99)), MaxMS: ms(s.hist.max), Errors: s.errors(),
	}
}

// rows are the lines of one run: one per op, and a total for a blend.
func (rr runResult) rows() []row {
	var out []row
	for _, o := range rr.ops {
		out = append(out, statsRow(rr.scenario, opNames[o], rr.run, rr.elapsed, rr.stats[o]))
	}
	if len(rr.ops) > 1 {
		out = append(out, statsRow(rr.scenario, "total", rr.run, rr.elapsed, rr.total()))
	}
	for _, o := range rr.steps {
		out = append(out, statsRow(rr.scenario, opNames[o], rr.run, rr.elapsed, rr.stats[o]))
	}
	for i := range out {
		out[i].RSSMiB, out[i].PeakMiB, out[i].LoadAvg = rr.rssMiB, rr.peakMiB, rr.load
		if rr.ops[0] == opRefresh || len(rr.ops) > 1 {
			out[i].Reseeds = rr.reseeds
		}
	}
	return out
}

// medianRows takes, op by op, the median of each figure over the runs and
// the sum of their errors.
func medianRows(runs []runResult) []row {
	byOp := map[string][]row{}
	var order []string
	for _, rr := range runs {
		for _, r := range rr.rows() {
			if _, ok := byOp[r.Op]; !ok {
				order = append(order, r.Op)
			}
			byOp[r.Op] = append(byOp[r.Op], r)
		}
	}
	var out []row
	for _, op := range order {
		rs := byOp[op]
		med := func(f func(row) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			slices.Sort(v)
			if len(v)%2 == 1 {
				return v[len(v)/2]
			}
			return (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		m := row{Scenario: rs[0].Scenario, Op: op, Errors: map[string]uint64{}}
		m.Seconds = med(func(r row) float64 { return r.Seconds })
		m.Requests = uint64(med(func(r row) float64 { return float64(r.Requests) }))
		m.RPS = med(func(r row) float64 { return r.RPS })
		m.MeanMS = med(func(r row) float64 { return r.MeanMS })
		m.P50MS = med(func(r row) float64 { return r.P50MS })
		m.P90MS = med(func(r row) float64 { return r.P90MS })
		m.P99MS = med(func(r row) float64 { return r.P99MS })
		m.MaxMS = med(func(r row) float64 { return r.MaxMS })
		m.RSSMiB = med(func(r row) float64 { return r.RSSMiB })
		m.PeakMiB = med(func(r row) float64 { return r.PeakMiB })
		for i := range m.LoadAvg {
			m.LoadAvg[i] = med(func(r row) float64 { return r.LoadAvg[i] })
		}
		for _, r := range rs {
			m.Reseeds += r.Reseeds
			for k, v := range r.Errors {
				m.Errors[k] += v
			}
		}
		out = append(out, m)
	}
	return out
}

func (rep *report) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

func (rep *report) writeTable(w io.Writer) error {
	label := rep.Label
	if label == "" {
		label = rep.Issuer
	}
	dpop := ""
	if rep.DPoP {
		dpop = ", DPoP proofs on token requests"
	}
	fmt.Fprintf(w, "\n%s: %d connections, %s per run, %d CPUs%s\n", label, rep.Concurrency, rep.Duration, rep.CPUs, dpop)
	write := func(title string, rows []row) {
		if len(rows) == 0 {
			return
		}
		fmt.Fprintf(w, "\n%s\n", title)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\top\trun\treqs\treq/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tRSS MiB\tpeak MiB\tload 1m\terrors\t")
		for _, r := range rows {
			run := strconv.Itoa(r.Run)
			if r.Run == 0 {
				run = "median"
			}
			mib := func(v float64) string {
				if v <= 0 {
					return "-"
				}
				return fmt.Sprintf("%.1f", v)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t%.2f\t%s\t\n",
				r.Scenario, r.Op, run, r.Requests, r.RPS, r.P50MS, r.P90MS, r.P99MS, r.MaxMS, mib(r.RSSMiB), mib(r.PeakMiB), r.LoadAvg[0], formatErrors(r))
		}
		tw.Flush()
	}
	if len(rep.Medians) > 0 {
		write("every run", rep.Runs)
		write("medians", rep.Medians)
	} else {
		write("results", rep.Runs)
	}
	return nil
}

func formatErrors(r row) string {
	if len(r.Errors) == 0 {
		s := "none"
		if r.Reseeds > 0 {
			s += fmt.Sprintf(" (%d chains restarted)", r.Reseeds)
		}
		return s
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, r.Errors[k]))
	}
	return strings.Join(parts, " ")
}

// loadAvg reads the 1, 5 and 15 minute load averages (Linux; zero elsewhere).
func loadAvg() [3]float64 {
	var out [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	for i, f := range strings.Fields(string(b)) {
		if i >= 3 {
			break
		}
		out[i], _ = strconv.ParseFloat(f, 64)
	}
	return out
}

// rssMiB reads a process's resident set size (Linux; zero elsewhere).
func rssMiB(pid int) float64 { return statusMiB(pid, "VmRSS:") }

// statusMiB reads a size field of /proc/PID/status, in MiB (zero when unreadable).
func statusMiB(pid int, field string) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// peakWatch follows a process's peak RSS during a run. The kernel's own
// high-water mark (VmHWM) is reset at the start when /proc/PID/clear_refs
// is writable (same user, Linux 4.0+); the RSS is also sampled every 10 ms,
// which serves alone where the reset is refused.
type peakWatch struct {
	pid   int
	reset bool
	done  chan struct{}
	max   chan float64
}

func watchPeak(pid int) *peakWatch {
	w := &peakWatch{pid: pid, done: make(chan struct{}), max: make(chan float64, 1)}
	w.reset = os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0) == nil
	go func() {
		peak := rssMiB(pid)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.done:
				w.max <- max(peak, rssMiB(pid))
				return
			case <-t.C:
				peak = max(peak, rssMiB(pid))
			}
		}
	}()
	return w
}

// stop ends the watch and returns the peak RSS in MiB; nil watches none.
func (w *peakWatch) stop() float64 {
	if w == nil {
		return 0
	}
	close(w.done)
	peak := <-w.max
	if w.reset {
		peak = max(peak, statusMiB(w.pid, "VmHWM:"))
	}
	return peak
}
