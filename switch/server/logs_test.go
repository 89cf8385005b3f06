package server_test

import (
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/client"
	"github.com/dienbao/dienbao/switch/daemon/daemontest"
	"github.com/dienbao/dienbao/switch/telegram"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// No log line, at any level, carries a telegram's body or subject.
func TestLogsNeverCarryBodyOrSubject(t *testing.T) {
	buf := &daemontest.Buffer{}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	log := zap.New(zapcore.NewCore(enc, buf, zapcore.DebugLevel))
	site := daemontest.StartWithLogger(t, t.TempDir(), log)

	const subject, body = "SUBJECT-MARKER-7f3a", "BODY-MARKER-91c2"
	site.Send("HN.UBND", client.Telegram{To: []telegram.Address{"NA.TU"}, Precedence: telegram.Flash,
		Subject: subject, Ref: "REF-1", Body: []byte(body)})
	// Refusals too: unknown addressee, above clearance, bad subject.
	c := site.Dial("NA.UBND")
	for _, m := range []client.Telegram{
		{To: []telegram.Address{"XX.NO"}, Subject: subject, Body: []byte(body)},
		{To: []telegram.Address{"NA.TU"}, Classification: telegram.TopSecret, Subject: subject, Body: []byte(body)},
		{To: []telegram.Address{"NA.TU"}, Subject: subject + "\x00", Body: []byte(body)},
	} {
		if _, err := c.Send(t.Context(), m); err == nil {
			t.Fatal("bad filing accepted")
		}
	}
	got := site.Receive("NA.TU", inbox)
	if len(got.Telegrams) != 1 || string(got.Telegrams[0].Body) != body {
		t.Fatal("the good telegram was not delivered")
	}
	site.Receive("HN.UBND", client.ReceiveOptions{Receipts: true})
	site.Stop()

	logs := buf.String()
	if !strings.Contains(logs, "telegram delivered") {
		t.Fatal("the capture did not see the switch's logs")
	}
	for _, marker := range []string{subject, body} {
		if strings.Contains(logs, marker) {
			t.Errorf("a log line carries %q", marker)
		}
	}
}
