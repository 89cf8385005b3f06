package server_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
	"github.com/quic-go/quic-go"
)

// A terminal that ends its subscription (closes its side of the subscribe
// stream, as tg inbox does at "nothing waiting") just as a telegram is
// handed to it still stores and acknowledges that telegram: the switch
// hands out nothing more, keeps the connection until what is in flight is
// acknowledged, then closes it without an error. Before, it closed the
// connection at once, and the telegram went back to the queue to be sent
// again flagged as a possible duplicate.
func TestEndedSubscriptionKeepsWhatIsInFlight(t *testing.T) {
	site := daemontest.Start(t)
	c, err := rawDial(t, site, "NA.TU", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseWithError(0, "")
	sub, _ := c.OpenStreamSync(context.Background())
	wire.WriteFrame(sub, wire.TSubscribe, wire.Subscribe{Inbox: true})
	var ok wire.Subscribed
	if err := wire.ReadExpect(sub, wire.DefaultMaxFrame, wire.TSubscribed, &ok); err != nil {
		t.Fatal(err)
	}
	var drained wire.Drained
	if err := wire.ReadExpect(sub, wire.DefaultMaxFrame, wire.TDrained, &drained); err != nil {
		t.Fatal(err)
	}
	first := site.Send("HN.UBND", tg("NA.TU", telegram.Immediate, "arrives as the terminal stops"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ds, err := c.AcceptStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var d wire.Deliver
	if err := wire.ReadExpect(ds, wire.DefaultMaxFrame, wire.TDeliver, &d); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(ds, make([]byte, d.Header.BodyLen)); err != nil {
		t.Fatal(err)
	}
	sub.Close() // the terminal stops receiving
	// The switch closed at once before: give it the chance.
	select {
	case <-c.Context().Done():
		t.Fatalf("the switch closed the connection with a telegram in flight: %v", context.Cause(c.Context()))
	case <-time.After(2 * time.Second):
	}
	// Filed now, it is not handed to the stopped terminal.
	second := site.Send("HN.UBND", tg("NA.TU", telegram.Flash, "after the stop"))
	if err := wire.WriteFrame(ds, wire.TAck, wire.Ack{Tag: d.Tag}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the connection stayed open after the last hand-out was acknowledged")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(c.Context()); !errors.As(err, &ae) || !ae.Remote || ae.ErrorCode != 0 {
		t.Fatalf("the switch closed the connection with %v, want no error", err)
	}
	ds1, _ := site.Server.Store().Delivery(first, "NA.TU")
	if ds1.Status != telegram.Delivered || ds1.Attempts != 1 {
		t.Fatalf("the telegram in flight: %+v, want delivered at the first attempt", ds1)
	}
	if ds2, _ := site.Server.Store().Delivery(second, "NA.TU"); !ds2.Pending() || ds2.Attempts != 0 {
		t.Fatalf("the telegram filed after the stop: %+v, want waiting, never handed out", ds2)
	}
}
