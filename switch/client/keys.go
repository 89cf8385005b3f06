package client

import (
	"context"

	"github.com/dienbao/dienbao/switch/wire"
)

// RotateKeys asks the switch to make a new data-encryption key current and
// re-seal older records in the background (operators only). It returns the
// keys the switch holds afterwards.
func (c *Client) RotateKeys(ctx context.Context) (wire.Keys, error) {
	var k wire.Keys
	str, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return k, c.closeErr(err)
	}
	defer str.CancelRead(0)
	if err := wire.WriteFrame(str, wire.TRotateKeys, wire.RotateKeys{}); err != nil {
		return k, c.closeErr(err)
	}
	str.Close()
	err = wire.ReadExpect(str, c.MaxFrame, wire.TKeys, &k)
	return k, c.closeErr(err)
}
