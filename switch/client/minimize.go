package client

import (
	"context"

	"github.com/dienbao/dienbao/switch/wire"
)

// Minimize declares, lifts or (an empty request) lists MINIMIZE
// declarations: operators do all three, terminals list those covering
// their agency.
func (c *Client) Minimize(ctx context.Context, req wire.MinimizeRequest) (wire.Minimizes, error) {
	var r wire.Minimizes
	err := c.request(ctx, wire.TMinimize, req, wire.TMinimized, &r)
	return r, err
}
