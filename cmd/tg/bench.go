package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
)

// benchCmd is tg bench: a load generator over the real client library and
// real QUIC. Recipients acknowledge each telegram as soon as it arrives
// (they do not store it: the switch is what is measured).
type benchCmd struct {
	Dev        string        `type:"path" help:"A dev site folder (switchd --dev --data DIR): bench identities are issued from its CA and added to its directory."`
	SenderIDs  []string      `name:"sender-ids" type:"path" help:"Identity folders to send from (instead of --dev)."`
	RecvIDs    []string      `name:"recipient-ids" type:"path" help:"Identity folders to receive with (instead of --dev)."`
	Senders    int           `default:"4" help:"Sending terminals (--dev)."`
	Recipients int           `default:"4" help:"Receiving terminals, one agency each (--dev)."`
	Size       int           `default:"1024" help:"Body size in bytes (at least 8)."`
	Plain      bool          `help:"File unsealed (end-to-end sealing off; the site must allow UNCLASSIFIED plain: [end_to_end] allow_plain), to compare."`
	Mix        string        `default:"routine=100" help:"Precedence mix, e.g. flash=1,immediate=4,priority=15,routine=80."`
	Duration   time.Duration `default:"10s" help:"How long to file (ignored with --count)."`
	Count      int           `help:"File this many telegrams in all, then stop."`
	Rate       int           `help:"Offered load in telegrams per second, all senders together (open loop); 0: as fast as accepted (closed loop)."`
	Batch      int           `default:"1" help:"Telegrams per filing request (a FLASH always goes alone)."`
	Metrics    string        `help:"The switch's monitoring address HOST:PORT, for its CPU, disk and memory figures (--dev: read from the site)."`
	Idle       int           `help:"Also connect this many idle terminals (--dev; ten per agency), subscribed and waiting, for the whole run."`
	Backlog    int           `help:"First queue this many telegrams for an agency that never connects (--dev: BENCH.OFFLINE), then measure."`
	Settle     time.Duration `default:"30s" help:"With --backlog: wait this long after filling, for the store's compaction to settle, before measuring."`
}

type benchRun struct {
	cmd       *benchCmd
	sendDirs  []string
	recvDirs  []string
	idleDirs  []string
	recvAddrs []telegram.Address
	mix       []telegram.Precedence // one entry per percent
	accepted  atomic.Int64
	delivered atomic.Int64
	refused   atomic.Int64
	mu        sync.Mutex
	acceptLat map[telegram.Precedence][]time.Duration
	delivLat  map[telegram.Precedence][]time.Duration
	start     atomic.Int64 // unix ns; deliveries of telegrams sent before are not counted
	// found is the dev site's directory file as the bench found it, and
	// addedKeys the agency key files it published (--dev: cleanUp).
	found     []byte
	addedKeys []string
	added     []telegram.Address
	// devCA and devSwitch: the dev site's CA and switch address, read once.
	devCA     *certs.CA
	devSwitch []byte
}

func (c *benchCmd) Run(e *env) (err error) {
	if c.Size < 8 {
		return fault.E("bench", fault.Invalid, "--size must be at least 8 (the body carries the send time)")
	}
	r := &benchRun{cmd: c, acceptLat: map[telegram.Precedence][]time.Duration{}, delivLat: map[telegram.Precedence][]time.Duration{}}
	if r.mix, err = parseMix(c.Mix); err != nil {
		return err
	}
	switch {
	case c.Dev != "":
		if err := r.devIdentities(e); err != nil {
			return err
		}
		// The dev site's directory goes back as it was found, once the
		// bench has taken back what it left in custody (bench_cleanup.go).
		defer func() {
			if cerr := r.cleanUp(e); err == nil {
				err = cerr
			}
		}()
		if c.Metrics == "" {
			if b, err := os.ReadFile(filepath.Join(c.Dev, "monitor")); err == nil {
				c.Metrics = strings.TrimSpace(string(b))
			}
		}
	case len(c.SenderIDs) > 0 && len(c.RecvIDs) > 0:
		r.sendDirs, r.recvDirs = c.SenderIDs, c.RecvIDs
		for _, d := range r.recvDirs {
			f, err := certs.LoadFolder(d)
			if err != nil {
				return err
			}
			r.recvAddrs = append(r.recvAddrs, f.Identity.Agency)
		}
	default:
		return fault.E("bench", fault.Invalid, "give --dev DIR, or --sender-ids and --recipient-ids")
	}
	return r.run(e)
}

// parseMix reads "flash=1,routine=99" into a 100-slot table.
func parseMix(s string) ([]telegram.Precedence, error) {
	var out []telegram.Precedence
	total := 0
	for _, part := range strings.Split(s, ",") {
		name, n, ok := strings.Cut(strings.TrimSpace(part), "=")
		pct, err := strconv.Atoi(n)
		var p telegram.Precedence
		if !ok || err != nil || pct < 0 || p.UnmarshalText([]byte(name)) != nil {
			return nil, fault.Errorf("bench", fault.Invalid, "--mix %q: use precedence=percent, comma-separated", s)
		}
		total += pct
		for i := 0; i < pct; i++ {
			out = append(out, p)
		}
	}
	if total != 100 {
		return nil, fault.Errorf("bench", fault.Invalid, "--mix adds up to %d%%, not 100%%", total)
	}
	return out, nil
}

func (r *benchRun) run(e *env) error {
	c := r.cmd
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()

	// Recipients first, so nothing queues before they are there.
	var rwg sync.WaitGroup
	recvCtx, stopRecv := context.WithCancel(context.Background())
	defer stopRecv()
	for _, d := range r.recvDirs {
		cl, err := dialDir(ctx, d)
		if err != nil {
			return err
		}
		defer cl.Close()
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			cl.Receive(recvCtx, client.ReceiveOptions{Inbox: true, Follow: true}, benchSink{r})
		}()
	}
	if err := r.connectIdle(e, recvCtx, &rwg); err != nil {
		return err
	}
	if err := r.fillBacklog(e); err != nil {
		return err
	}
	before := scrape(c.Metrics)
	body := make([]byte, c.Size)
	start := time.Now()
	r.start.Store(start.UnixNano())
	deadline := start.Add(c.Duration)
	var filed atomic.Int64
	var swg sync.WaitGroup
	var perSender time.Duration
	if c.Rate > 0 {
		perSender = time.Duration(float64(time.Second) * float64(len(r.sendDirs)*c.Batch) / float64(c.Rate))
	}
	errs := make(chan error, len(r.sendDirs))
	for i, d := range r.sendDirs {
		cl, err := dialDir(ctx, d)
		if err != nil {
			return err
		}
		defer cl.Close()
		swg.Add(1)
		go func(i int) {
			defer swg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), uint64(start.UnixNano())))
			next := time.Now()
			for k := 0; ctx.Err() == nil; k++ {
				if c.Count > 0 && filed.Add(int64(c.Batch)) > int64(c.Count) {
					return
				}
				if c.Count == 0 && time.Now().After(deadline) {
					return
				}
				if perSender > 0 {
					next = next.Add(perSender)
					time.Sleep(time.Until(next))
				}
				batch := make([]client.Telegram, c.Batch)
				for j := range batch {
					b := append([]byte(nil), body...)
					binary.BigEndian.PutUint64(b, uint64(time.Now().UnixNano()))
					batch[j] = client.Telegram{To: []telegram.Address{r.recvAddrs[(i+k+j)%len(r.recvAddrs)]},
						Precedence: r.mix[rng.IntN(len(r.mix))], Body: b, Plain: c.Plain}
				}
				// A FLASH goes alone, as an operator files one: it must
				// not wait for a batch of lower traffic.
				var rest []client.Telegram
				for _, m := range batch {
					if m.Precedence == telegram.Flash && len(batch) > 1 {
						if err := r.send(ctx, cl, []client.Telegram{m}); err != nil {
							errs <- err
							return
						}
						continue
					}
					rest = append(rest, m)
				}
				if len(rest) > 0 {
					if err := r.send(ctx, cl, rest); err != nil {
						errs <- err
						return
					}
				}
			}
		}(i)
	}
	done := make(chan struct{})
	go func() { swg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last, lastDeliv int64
	var peakAnon float64
	progress := func() {
		if m := scrape(c.Metrics); m != nil {
			peakAnon = max(peakAnon, m["dienbao_process_anonymous_memory_bytes"])
		}
		a, d := r.accepted.Load(), r.delivered.Load()
		fmt.Fprintf(e.stderr, "\r%5.0fs  accepted %9d (%7d/s)  delivered %9d (%7d/s)  ", time.Since(start).Seconds(), a, a-last, d, d-lastDeliv)
		last, lastDeliv = a, d
	}
filing:
	for {
		select {
		case <-done:
			break filing
		case err := <-errs:
			cancel()
			return err
		case <-tick.C:
			progress()
		}
	}
	filingTime := time.Since(start)
	// Let the deliveries catch up (up to 30 s).
	for wait := time.Now().Add(30 * time.Second); r.delivered.Load() < r.accepted.Load() && time.Now().Before(wait); {
		select {
		case <-tick.C:
			progress()
		case <-time.After(50 * time.Millisecond):
		}
	}
	deliveryTime := time.Since(start)
	fmt.Fprintln(e.stderr)
	stopRecv()
	rwg.Wait()
	after := scrape(c.Metrics)
	if after != nil {
		after["peak_anonymous"] = max(peakAnon, after["dienbao_process_anonymous_memory_bytes"])
	}
	return r.report(e, filingTime, deliveryTime, before, after)
}

// refusedPause is how long a bench sender whose request was refused as a
// whole waits before its next.
const refusedPause = 100 * time.Millisecond

// send files one request and records its outcome; it returns only the
// errors that end the run.
func (r *benchRun) send(ctx context.Context, cl *client.Client, batch []client.Telegram) error {
	t0 := time.Now()
	res, err := cl.SendBatch(ctx, batch)
	lat := time.Since(t0)
	if err != nil {
		if ctx.Err() == nil && !fault.Is(fault.Unavailable, err) && !fault.Is(fault.Minimized, err) {
			return err
		}
		r.refused.Add(int64(len(batch)))
		// A terminal refused as a whole (after the client library's own
		// retries) waits before it files again, rather than spin.
		select {
		case <-ctx.Done():
		case <-time.After(refusedPause):
		}
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for j, fr := range res {
		if fr.Err != nil {
			r.refused.Add(1)
			continue
		}
		r.accepted.Add(1)
		r.acceptLat[batch[j].Precedence] = append(r.acceptLat[batch[j].Precedence], lat)
	}
	return nil
}

// fillBacklog queues --backlog telegrams for the offline agency, in
// batches of 1,000 from every sender at once, before the measured run.
func (r *benchRun) fillBacklog(e *env) error {
	n := r.cmd.Backlog
	if n <= 0 {
		return nil
	}
	t0 := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, len(r.sendDirs))
	body := make([]byte, r.cmd.Size)
	for _, d := range r.sendDirs {
		cl, err := dialDir(e.ctx, d)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			for {
				from := next.Add(1000) - 1000
				if from >= int64(n) {
					return
				}
				batch := make([]client.Telegram, min(1000, int64(n)-from))
				for i := range batch {
					batch[i] = client.Telegram{To: []telegram.Address{offlineAgency}, Body: body, Plain: r.cmd.Plain}
				}
				if _, err := cl.SendBatch(e.ctx, batch); err != nil {
					errc <- err
					return
				}
				if (from/1000)%50 == 0 {
					fmt.Fprintf(e.stderr, "\rbacklog: %d queued", from+int64(len(batch)))
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	fmt.Fprintf(e.stderr, "\rbacklog: %d queued for %s in %v; settling %v\n", n, offlineAgency, time.Since(t0).Round(time.Second), r.cmd.Settle)
	time.Sleep(r.cmd.Settle)
	return nil
}

// connectIdle connects the idle terminals, paced under the switch's
// default handshake rate per address (100/s), and keeps them subscribed.
func (r *benchRun) connectIdle(e *env, ctx context.Context, wg *sync.WaitGroup) error {
	if len(r.idleDirs) == 0 {
		return nil
	}
	pace := time.NewTicker(time.Second / 80)
	defer pace.Stop()
	for i, d := range r.idleDirs {
		<-pace.C
		cl, err := dialDir(e.ctx, d)
		if err != nil {
			return fmt.Errorf("idle terminal %d: %w", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			cl.Receive(ctx, client.ReceiveOptions{Inbox: true, Follow: true}, benchSink{r})
		}()
		if (i+1)%100 == 0 {
			fmt.Fprintf(e.stderr, "\r%d idle terminals connected", i+1)
		}
	}
	fmt.Fprintln(e.stderr)
	return nil
}

// offlineAgency is the agency --backlog queues for; it has no terminal.
const offlineAgency = telegram.Address("BENCH.OFFLINE")

type benchSink struct{ r *benchRun }

func (s benchSink) Telegram(d client.Delivery) error {
	if len(d.Body) >= 8 {
		ns := int64(binary.BigEndian.Uint64(d.Body))
		if ns < s.r.start.Load() || s.r.start.Load() == 0 {
			return nil // from before this run (the directory probe, an earlier run)
		}
		sent := time.Unix(0, ns)
		s.r.mu.Lock()
		p := d.Header.Precedence
		s.r.delivLat[p] = append(s.r.delivLat[p], time.Since(sent))
		s.r.mu.Unlock()
	}
	s.r.delivered.Add(1)
	return nil
}

func (s benchSink) Receipt(telegram.Receipt) error { return nil }

func dialDir(ctx context.Context, dir string) (*client.Client, error) {
	f, err := certs.LoadFolder(dir)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return client.Dial(dctx, f)
}

func percentile(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return 0
	}
	i := int(q * float64(len(d)-1))
	return float64(d[i]) / float64(time.Millisecond)
}

type latencies struct {
	N    int     `json:"n"`
	P50  float64 `json:"p50_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p99_9_ms"`
	Max  float64 `json:"max_ms"`
}

func summarize(d []time.Duration) latencies {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return latencies{N: len(d), P50: percentile(d, .5), P99: percentile(d, .99), P999: percentile(d, .999), Max: percentile(d, 1)}
}

func (r *benchRun) report(e *env, filing, delivering time.Duration, before, after map[string]float64) error {
	accepted, delivered := r.accepted.Load(), r.delivered.Load()
	out := map[string]any{
		"senders": len(r.sendDirs), "recipients": len(r.recvDirs), "idle": len(r.idleDirs), "size": r.cmd.Size, "batch": r.cmd.Batch, "mix": r.cmd.Mix,
		"offered_rate": r.cmd.Rate, "accepted": accepted, "delivered": delivered, "refused": r.refused.Load(),
		"filing_seconds": filing.Seconds(), "accepted_per_s": float64(accepted) / filing.Seconds(),
		"delivered_per_s": float64(delivered) / delivering.Seconds(),
	}
	var all []time.Duration
	acc, dl := map[string]latencies{}, map[string]latencies{}
	for p := telegram.Flash; p >= telegram.Routine; p-- {
		all = append(all, r.acceptLat[p]...)
		if len(r.acceptLat[p]) > 0 {
			acc[p.String()] = summarize(r.acceptLat[p])
		}
		if len(r.delivLat[p]) > 0 {
			dl[p.String()] = summarize(r.delivLat[p])
		}
	}
	allAcc := summarize(all)
	out["accept_p50_ms"], out["accept_p99_ms"] = allAcc.P50, allAcc.P99
	out["accept_latency"], out["delivery_latency"] = acc, dl
	if f, ok := dl["FLASH"]; ok {
		out["flash_delivery_p99_ms"] = f.P99
	}
	if before != nil && after != nil && accepted > 0 {
		k := float64(accepted) / 1000
		out["cpu_seconds_per_1000"] = (after["process_cpu_seconds_total"] - before["process_cpu_seconds_total"]) / k
		out["disk_bytes_per_telegram"] = (after["dienbao_process_disk_write_bytes_total"] - before["dienbao_process_disk_write_bytes_total"]) / float64(accepted)
		out["switch_peak_memory_bytes"] = after["peak_anonymous"]
		out["switch_peak_resident_bytes"] = after["dienbao_process_peak_resident_memory_bytes"]
	}
	if e.json {
		return e.emit(out)
	}
	w := e.stdout
	if len(r.idleDirs) > 0 {
		fmt.Fprintf(w, "%d idle terminals connected throughout\n", len(r.idleDirs))
	}
	load := "closed loop"
	if r.cmd.Rate > 0 {
		load = fmt.Sprintf("offered %d/s", r.cmd.Rate)
	}
	fmt.Fprintf(w, "%d senders → %d recipients, %d-byte bodies, batch %d, mix %s, %s\n", len(r.sendDirs), len(r.recvDirs),
		r.cmd.Size, r.cmd.Batch, r.cmd.Mix, load)
	fmt.Fprintf(w, "accepted   %d in %.1fs: %.0f/s (refused %d)\n", accepted, filing.Seconds(), out["accepted_per_s"], r.refused.Load())
	fmt.Fprintf(w, "delivered  %d, acknowledged: %.0f/s\n", delivered, out["delivered_per_s"])
	fmt.Fprintf(w, "%-10s %-12s %8s %8s %8s %8s %8s\n", "latency", "precedence", "n", "p50 ms", "p99 ms", "p99.9 ms", "max ms")
	for _, kind := range []struct {
		name string
		m    map[string]latencies
	}{{"ACCEPTED", acc}, {"delivery", dl}} {
		for p := telegram.Flash; p >= telegram.Routine; p-- {
			if l, ok := kind.m[p.String()]; ok {
				fmt.Fprintf(w, "%-10s %-12s %8d %8.2f %8.2f %8.2f %8.2f\n", kind.name, p, l.N, l.P50, l.P99, l.P999, l.Max)
			}
		}
	}
	if v, ok := out["cpu_seconds_per_1000"]; ok {
		fmt.Fprintf(w, "switch: %.3f CPU s per 1,000 telegrams, %.0f bytes written to disk per telegram, peak memory %.0f MiB of its own (%.0f MiB resident with mapped store files)\n",
			v, out["disk_bytes_per_telegram"], out["switch_peak_memory_bytes"].(float64)/(1<<20), out["switch_peak_resident_bytes"].(float64)/(1<<20))
	}
	return nil
}
