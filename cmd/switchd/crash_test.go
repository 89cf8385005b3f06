package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
)

// The crash test files and delivers telegrams concurrently through a real
// switchd, kills it with SIGKILL at random moments, restarts it, and
// repeats. Then it checks that every telegram ever answered ACCEPTED is in
// each addressee's inbox exactly once, that nothing else is, and that the
// audit log agrees.
//
// CI runs a short version. The long one:
//
//	DIENBAO_CRASH_CYCLES=100 go test ./cmd/switchd -run TestCrashLoop -v -timeout 60m

var (
	crashSenders    = []string{"HN.UBND", "TW.VPTW", "CP.VPCP", "NA.TU"}
	crashRecipients = []telegram.Address{"NA.UBND", "NA.VINH.UBND"}
	// crashTerminals are the receiving terminals, by identity folder: NA.UBND
	// runs two, each with its own inbox, so a telegram may reach the agency
	// twice; every copy after the first must then carry the
	// possible-duplicate flag.
	crashTerminals = map[string]telegram.Address{"NA.UBND": "NA.UBND", "NA.UBND-2": "NA.UBND", "NA.VINH.UBND": "NA.VINH.UBND"}
)

// filed is what a sender knows about one telegram.
type filed struct {
	ref string
	id  telegram.ID
	to  []telegram.Address
}

// crashRig holds the switch process and what the clients saw.
type crashRig struct {
	t    *testing.T
	data string
	addr string

	// launch starts the switch (a switchd process, or a virtual machine
	// running one) and returns its process; finish ends the last one;
	// openStore opens the store afterwards, for the audit check.
	launch    func() *process
	finish    func()
	openStore func() *store.Store
	// priorStarts counts the switch's starts before the loop's first.
	priorStarts int
	// killFn and startFn, if set, replace kill and start (a replicated
	// switch: the leader is killed, and started again as a follower);
	// group relaxes the count of starts in the audit log (a node starts
	// serving each time it takes the lead).
	killFn, startFn func()
	group           bool

	mu      sync.Mutex
	proc    *process
	runs    []*process // every run's process, for its log
	filings []filed    // answered ACCEPTED
	refiled int        // answers that said the reference was filed before
	failed  int        // requests whose answer was lost
	// stored counts, per agency, the terminals' inboxes that stored each
	// telegram; unflagged counts those stores not flagged as possible
	// duplicates.
	stored, unflagged map[telegram.Address]map[telegram.ID]int
	dups              atomic.Int64 // deliveries flagged as possible duplicates
}

func (r *crashRig) idDir(name string) string { return filepath.Join(r.data, "ids", name) }

func (r *crashRig) dial(name string) (*client.Client, error) { return dialFast(r.idDir(name)) }

// sender files telegrams with references name-000001, ... until stop; a
// request whose answer is lost is repeated with the same reference (and
// the same content) until it is answered.
func (r *crashRig) sender(name string, stop *atomic.Bool, wg *sync.WaitGroup) {
	defer wg.Done()
	rng := rand.New(rand.NewPCG(uint64(len(name)), uint64(time.Now().UnixNano())))
	var c *client.Client
	for n := 1; !stop.Load(); n++ {
		ref := fmt.Sprintf("%s-%06d", name, n)
		to := crashRecipients[:1+rng.IntN(len(crashRecipients))]
		if rng.IntN(2) == 0 {
			to = crashRecipients[1:]
		}
		msg := client.Telegram{To: to, Precedence: telegram.Precedences[rng.IntN(4)], Ref: ref,
			Body: []byte(ref + " " + string(make([]byte, rng.IntN(2048))))}
		for {
			if c == nil {
				var err error
				if c, err = r.dial(name); err != nil {
					c = nil
					time.Sleep(50 * time.Millisecond)
					continue
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			res, err := c.Send(ctx, msg)
			cancel()
			if err != nil {
				r.mu.Lock()
				r.failed++
				r.mu.Unlock()
				c.Close()
				c = nil
				continue
			}
			r.mu.Lock()
			r.filings = append(r.filings, filed{ref: ref, id: res.ID, to: to})
			if res.Duplicate {
				r.refiled++
			}
			r.mu.Unlock()
			break
		}
	}
	if c != nil {
		c.Close()
	}
}

// recorder stores into the recipient's inbox and counts first stores.
type recorder struct {
	r     *crashRig
	addr  telegram.Address
	inbox *client.Inbox
}

func (h *recorder) Telegram(d client.Delivery) error {
	if d.PossibleDuplicate {
		h.r.dups.Add(1)
	}
	stored, err := h.inbox.Store(d)
	if err != nil || !stored {
		return err
	}
	h.r.mu.Lock()
	h.r.stored[h.addr][d.Header.ID]++
	if !d.PossibleDuplicate {
		h.r.unflagged[h.addr][d.Header.ID]++
	}
	h.r.mu.Unlock()
	return nil
}

func (h *recorder) Receipt(telegram.Receipt) error { return nil }

// recipient receives as terminal name of agency addr until stop,
// reconnecting whenever the switch dies.
func (r *crashRig) recipient(name string, addr telegram.Address, stop *atomic.Bool, wg *sync.WaitGroup) {
	defer wg.Done()
	h := &recorder{r: r, addr: addr, inbox: &client.Inbox{Dir: filepath.Join(r.idDir(name), "inbox")}}
	for !stop.Load() {
		c, err := r.dial(name)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			for !stop.Load() {
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
		}()
		c.Receive(ctx, client.ReceiveOptions{Inbox: true, Follow: true}, h)
		cancel()
	}
}

func (r *crashRig) start() {
	if r.startFn != nil {
		r.startFn()
		return
	}
	p := r.launch()
	dialWhenUp(r.t, p, r.idDir("HN.UBND")).Close()
	r.mu.Lock()
	r.proc = p
	r.runs = append(r.runs, p)
	r.mu.Unlock()
}

// waitSessionsGone waits until the switch has closed every session of the
// receiving agencies, so that what they held in flight is back in the
// queues: a drain that started earlier could see "nothing waiting" while
// a telegram was still in flight to another terminal's closing session.
func (r *crashRig) waitSessionsGone() {
	c, err := r.dial("operator")
	if err != nil {
		r.t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ss, err := c.Sessions(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		left := 0
		for _, s := range ss {
			if _, ok := r.stored[s.Agency]; ok {
				left++
			}
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d sessions of the receiving agencies still open 30 s after they closed", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// issueTerminal issues another terminal certificate of agency into the
// identity folder name.
func (r *crashRig) issueTerminal(name string, agency telegram.Address) {
	ca, err := certs.LoadCA(filepath.Join(r.data, "ca"))
	if err != nil {
		r.t.Fatal(err)
	}
	iss, err := ca.Issue(certs.Request{Name: name, Role: certs.Terminal, Agency: agency, Clearance: telegram.Secret, Validity: time.Hour})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := certs.WriteFolder(r.idDir(name), iss, ca.PEM, r.addr); err != nil {
		r.t.Fatal(err)
	}
	if err := daemon.EnsureDevAgencyKeys(r.data, agency, r.idDir(name)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *crashRig) kill() {
	if r.killFn != nil {
		r.killFn()
		return
	}
	r.proc.cmd.Process.Signal(syscall.SIGKILL)
	<-r.proc.done
}

func TestCrashLoop(t *testing.T) {
	cycles := cyclesFromEnv(t, "DIENBAO_CRASH_CYCLES", 3)
	r := newCrashRig(t, filepath.Join(t.TempDir(), "dev"), freeUDPPort(t))
	bin := buildSwitchd(t)
	r.launch = func() *process { return startSwitchd(t, bin, "--dev", "--data", r.data, "--listen", r.addr) }
	r.finish = func() { r.proc.stop(t) }
	r.openStore = func() *store.Store { return daemontest.OpenStore(t, r.data) }
	r.run(cycles)
}

func newCrashRig(t *testing.T, data, addr string) *crashRig {
	r := &crashRig{t: t, data: data, addr: addr,
		stored: map[telegram.Address]map[telegram.ID]int{}, unflagged: map[telegram.Address]map[telegram.ID]int{}}
	for _, a := range crashRecipients {
		r.stored[a] = map[telegram.ID]int{}
		r.unflagged[a] = map[telegram.ID]int{}
	}
	return r
}

// run files and receives through the switch, killing it cycles times, then
// accounts for every telegram answered ACCEPTED and checks the audit log.
func (r *crashRig) run(cycles int) {
	t := r.t
	r.start()
	r.issueTerminal("NA.UBND-2", "NA.UBND")

	var stopSend, stopRecv atomic.Bool
	var senders, recipients sync.WaitGroup
	for _, name := range crashSenders {
		senders.Add(1)
		go r.sender(name, &stopSend, &senders)
	}
	for name, a := range crashTerminals {
		recipients.Add(1)
		go r.recipient(name, a, &stopRecv, &recipients)
	}
	rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	for i := 0; i < cycles; i++ {
		time.Sleep(time.Duration(150+rng.IntN(700)) * time.Millisecond)
		r.kill()
		r.start()
	}
	// Let the last run carry some traffic, then stop filing and drain.
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	stopSend.Store(true)
	senders.Wait()
	t.Logf("senders stopped after %v", time.Since(t0))
	stopRecv.Store(true)
	recipients.Wait()
	t.Logf("recipients stopped after %v", time.Since(t0))
	r.waitSessionsGone()
	for _, a := range crashRecipients {
		c, err := r.dial(string(a))
		if err != nil {
			t.Fatal(err)
		}
		// The terminal fsyncs each telegram it stores: a large backlog takes
		// a while. A stuck drain still fails, after this.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		h := &recorder{r: r, addr: a, inbox: &client.Inbox{Dir: filepath.Join(r.idDir(string(a)), "inbox")}}
		if err := c.Receive(ctx, client.ReceiveOptions{Inbox: true}, h); err != nil {
			out := r.proc.out.String()
			t.Fatalf("final drain for %s: %v\nlast of the switch's log:\n%s", a, err, out[max(0, len(out)-6000):])
		}
		cancel()
	}
	r.finish()
	st := r.openStore()
	defer st.Close()
	entries, err := st.Audit(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	// Telegrams given up for an addressee and reported to the sender
	// (NOT_DELIVERED: parked after max_attempts failed hand-outs) are
	// accounted for by their report; every other accepted telegram once
	// in each addressee's inbox (later copies flagged); nothing else.
	reported := map[string]bool{}
	for _, e := range entries {
		if e.Event == store.AuditParked || e.Event == store.AuditExpired {
			reported[e.ID.String()+"/"+string(e.To)] = true
		}
	}
	byRef := map[string]telegram.ID{}
	want := map[telegram.Address]map[telegram.ID]bool{}
	for _, a := range crashRecipients {
		want[a] = map[telegram.ID]bool{}
	}
	for _, f := range r.filings {
		if prev, ok := byRef[f.ref]; ok && prev != f.id {
			t.Fatalf("reference %s answered with two IDs: %s and %s", f.ref, prev, f.id)
		}
		byRef[f.ref] = f.id
		for _, a := range f.to {
			want[a][f.id] = true
		}
	}
	deliveries, twice, parked := 0, 0, 0
	for _, a := range crashRecipients {
		held := map[string]bool{} // telegram files in the agency's inboxes
		terminals := 0
		for name, of := range crashTerminals {
			if of != a {
				continue
			}
			terminals++
			files, _ := filepath.Glob(filepath.Join(r.idDir(name), "inbox", "*.tg"))
			for _, f := range files {
				held[filepath.Base(f)] = true
			}
		}
		gaveUp := 0
		for id := range want[a] {
			if reported[id.String()+"/"+string(a)] && r.stored[a][id] == 0 {
				gaveUp++
			}
		}
		if len(held) != len(want[a])-gaveUp {
			t.Errorf("%s's inboxes hold %d telegrams, %d were accepted for it and %d reported not delivered", a, len(held), len(want[a]), gaveUp)
		}
		parked += gaveUp
		for id := range want[a] {
			n, plain := r.stored[a][id], r.unflagged[a][id]
			switch {
			case n == 0 && reported[id.String()+"/"+string(a)]:
			case n < 1 || n > terminals:
				t.Errorf("%s stored accepted telegram %s %d times (%d terminals)", a, id, n, terminals)
			case plain > 1:
				t.Errorf("%s stored %s %d times without the possible-duplicate flag", a, id, plain)
			}
			if n > 1 {
				twice++
			}
		}
		for id := range r.stored[a] {
			if !want[a][id] {
				t.Errorf("%s received %s, which was never answered ACCEPTED", a, id)
			}
		}
		deliveries += len(want[a]) - gaveUp
	}

	// The audit log agrees: one filing per accepted telegram, one
	// delivery per telegram and addressee, nothing else filed.
	filedIDs, delivered, starts := map[telegram.ID]int{}, map[string]int{}, 0
	for i, e := range entries {
		if e.Index != uint64(i) {
			t.Fatalf("audit entry %d has index %d", i, e.Index)
		}
		switch e.Event {
		case store.AuditFiled:
			filedIDs[e.ID]++
		case store.AuditDelivered:
			delivered[e.ID.String()+"/"+string(e.To)]++
		case store.AuditSwitchStart:
			starts++
		}
	}
	if len(filedIDs) != len(byRef) {
		t.Errorf("audit records %d filings, %d telegrams were accepted", len(filedIDs), len(byRef))
	}
	for _, id := range byRef {
		if filedIDs[id] != 1 {
			t.Errorf("audit records %d filings of %s", filedIDs[id], id)
		}
	}
	for a, ids := range want {
		for id := range ids {
			if n := delivered[id.String()+"/"+string(a)]; n != 1 && !(n == 0 && reported[id.String()+"/"+string(a)]) {
				var steps []string
				for _, e := range entries {
					if e.ID == id {
						steps = append(steps, fmt.Sprintf("%d %s %s %s %s", e.Index, e.Event, e.To, e.Actor, e.Reason))
					}
				}
				t.Errorf("audit records %d deliveries of %s to %s; its entries: %v", n, id, a, steps)
				r.explain(st, id, a)
			}
		}
	}
	if r.group && starts < cycles+1 {
		t.Errorf("audit records %d starts, want one at least per leader (%d)", starts, cycles+1)
	} else if !r.group && starts != r.priorStarts+cycles+1 {
		t.Errorf("audit records %d starts, want %d", starts, r.priorStarts+cycles+1)
	}
	// And it is still one append-only log: the tree recomputed over every
	// leaf matches every checkpoint signed between the kills.
	_, checkpoints := daemontest.VerifyAudit(t, st)
	if checkpoints < cycles+1 {
		t.Errorf("%d checkpoints, want one at least per start (%d)", checkpoints, cycles+1)
	}
	t.Logf("crash loop: %d kills; %d telegrams accepted, %d deliveries, %d answers lost and refiled "+
		"(%d of them had committed), %d redeliveries flagged as possible duplicates, %d telegrams stored by both terminals of an agency "+
		"(each later copy flagged), %d given up and reported NOT_DELIVERED (parked), %d audit entries, %d checkpoints verified",
		cycles, len(byRef), deliveries, r.failed, r.refiled, r.dups.Load(), twice, parked, len(entries), checkpoints)
}

// explain logs what the store and the switch's logs say of telegram id for
// addressee a, which was not delivered: its delivery state, its
// sub-queue's persisted head and entries, and every log line naming it.
func (r *crashRig) explain(st *store.Store, id telegram.ID, a telegram.Address) {
	t := r.t
	h, err := st.Header(id)
	if err != nil {
		t.Logf("explain %s: header: %v", id, err)
		return
	}
	d, err := st.Delivery(id, a)
	t.Logf("explain %s for %s: %s %s, delivery state %+v (err %v)", id, a, h.Precedence, h.Classification, d, err)
	q := store.SubQueue{Agency: a, Prec: h.Precedence, Class: h.Classification}
	heads, _, err := st.Heads(a)
	t.Logf("explain: persisted head of the sub-queue %d (err %v)", heads[h.Precedence.Rank()][h.Classification-1], err)
	entries, err := st.ScanQueue(q, 0, 1000)
	t.Logf("explain: sub-queue entries %v (err %v)", entries, err)
	for i, p := range r.runs {
		for _, line := range strings.Split(p.out.String(), "\n") {
			if strings.Contains(line, id.String()) || strings.Contains(line, "acknowledgement not recorded") {
				t.Logf("explain: run %d: %s", i, line)
			}
		}
	}
}
