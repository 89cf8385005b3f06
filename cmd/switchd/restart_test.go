package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/quic-go/quic-go"
)

// A terminal whose switch was killed and restarted learns it from its next
// request on the old connection: the restarted switch answers it with a
// stateless reset (RFC 9000, 10.3; the key is derived from the keyring, so
// it is the same after the restart), and the request fails at once, so the
// terminal can reconnect. Without the reset it would wait out the idle
// timeout. (Packets under 42 bytes, such as bare keep-alives, get no reset:
// a terminal that only listens notices within the idle timeout, 15 s by
// default.)
func TestClientNoticesARestartedSwitch(t *testing.T) {
	bin := buildSwitchd(t)
	data := filepath.Join(t.TempDir(), "dev")
	addr := freeUDPPort(t)
	p := startSwitchd(t, bin, "--dev", "--data", data, "--listen", addr)
	dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND")).Close()
	f, err := certs.LoadFolder(filepath.Join(data, "ids", "NA.UBND"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const idle = 60 * time.Second
	c, err := client.Dial(ctx, f, client.WithIdleTimeout(idle), client.WithKeepAlive(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p = startSwitchd(t, bin, "--dev", "--data", data, "--listen", addr)
	dialWhenUp(t, p, filepath.Join(data, "ids", "HN.UBND")).Close()
	sendCtx, cancelSend := context.WithTimeout(context.Background(), 2*idle)
	defer cancelSend()
	_, err = c.Send(sendCtx, client.Telegram{To: []telegram.Address{"HN.UBND"}, Body: bytes.Repeat([]byte("x"), 200)})
	if err == nil {
		t.Fatal("a filing on the connection to the killed switch was accepted")
	}
	<-c.Done()
	var reset *quic.StatelessResetError
	if !errors.As(c.Err(), &reset) {
		t.Fatalf("the filing failed with %v and the connection ended with %v, want a stateless reset", err, c.Err())
	}
	p.stop(t)
}
