package client

import (
	"context"

	"github.com/dienbao/dienbao/switch/wire"
)

// Clock reads the switch's clock (operators); with confirm, the operator
// vouches for the switch's wall clock and the switch trusts it again.
func (c *Client) Clock(ctx context.Context, confirm bool) (wire.Clock, error) {
	var r wire.Clock
	err := c.request(ctx, wire.TClock, wire.ClockRequest{Confirm: confirm}, wire.TClockReply, &r)
	return r, err
}
