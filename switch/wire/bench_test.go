package wire

import (
	"bytes"
	"testing"
	"time"

	"github.com/dienbao/dienbao/switch/telegram"
)

func BenchmarkDeliverFrame(b *testing.B) {
	d := Deliver{Tag: 1, Header: telegram.Header{ID: telegram.NewIDGen().New(time.Now()), From: "HN.UBND",
		To: []telegram.Address{"NA.UBND", "NA.TU"}, Precedence: telegram.Flash, Classification: telegram.Secret,
		Subject: "Báo cáo", FiledAt: time.Now(), BodyLen: 1024}}
	var buf bytes.Buffer
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf.Reset()
		if err := WriteFrame(&buf, TDeliver, d); err != nil {
			b.Fatal(err)
		}
		var out Deliver
		if err := ReadExpect(&buf, DefaultMaxFrame, TDeliver, &out); err != nil {
			b.Fatal(err)
		}
	}
}
