package client

import (
	"context"

	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// Queues reads the queue figures (operators), with up to overdue overdue
// telegrams listed.
func (c *Client) Queues(ctx context.Context, overdue int) (wire.Queues, error) {
	return c.QueuesWith(ctx, wire.QueuesRequest{Overdue: overdue})
}

// QueuesWith asks for the queue figures as req says (with Ages, each
// row's age histogram).
func (c *Client) QueuesWith(ctx context.Context, req wire.QueuesRequest) (wire.Queues, error) {
	var r wire.Queues
	err := c.request(ctx, wire.TQueues, req, wire.TQueuesReply, &r)
	return r, err
}

// Sessions lists the connected sessions (operators).
func (c *Client) Sessions(ctx context.Context) ([]wire.SessionInfo, error) {
	var r wire.Sessions
	err := c.request(ctx, wire.TSessions, wire.SessionsRequest{}, wire.TSessionList, &r)
	return r.Sessions, err
}

// Show reads a telegram's header (without subject) and delivery states
// (operators).
func (c *Client) Show(ctx context.Context, id telegram.ID) (wire.Show, error) {
	var r wire.Show
	err := c.request(ctx, wire.TShow, wire.ShowRequest{ID: id}, wire.TShowReply, &r)
	return r, err
}

// Operate performs an operator action.
func (c *Client) Operate(ctx context.Context, op wire.Operate) (wire.Operated, error) {
	var r wire.Operated
	err := c.request(ctx, wire.TOperate, op, wire.TOperated, &r)
	return r, err
}

// Links lists the switch's links to its peer switches (operators).
func (c *Client) Links(ctx context.Context) (wire.Links, error) {
	var r wire.Links
	err := c.request(ctx, wire.TLinks, wire.LinksRequest{}, wire.TLinksReply, &r)
	return r, err
}

// HoldLink holds (hold) or releases the link to peer, and returns the
// links after it (operators).
func (c *Client) HoldLink(ctx context.Context, peer string, hold bool) (wire.Links, error) {
	var r wire.Links
	err := c.request(ctx, wire.TLinkOperate, wire.LinkOperate{Peer: peer, Hold: hold}, wire.TLinksReply, &r)
	return r, err
}

// List lists telegrams in custody as req asks (operators).
func (c *Client) List(ctx context.Context, req wire.ListRequest) (wire.List, error) {
	var r wire.List
	err := c.request(ctx, wire.TList, req, wire.TListed, &r)
	return r, err
}

// MoveQueue re-addresses an agency's waiting telegrams (operators).
func (c *Client) MoveQueue(ctx context.Context, req wire.MoveQueue) (wire.MovedQueue, error) {
	var r wire.MovedQueue
	err := c.request(ctx, wire.TMoveQueue, req, wire.TMovedQueue, &r)
	return r, err
}

// Notice posts, closes or lists incident notices (operators).
func (c *Client) Notice(ctx context.Context, req wire.NoticeRequest) (wire.Notices, error) {
	var r wire.Notices
	err := c.request(ctx, wire.TNotice, req, wire.TNotices, &r)
	return r, err
}
