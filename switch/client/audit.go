package client

import (
	"context"

	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/dienbao/dienbao/switch/wire"
)

// request sends one request frame and reads one reply frame of type want.
func (c *Client) request(ctx context.Context, t wire.Type, req any, want wire.Type, reply any) error {
	str, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return c.closeErr(err)
	}
	defer str.CancelRead(0)
	if err := wire.WriteFrame(str, t, req); err != nil {
		return c.closeErr(err)
	}
	str.Close()
	limit := c.MaxFrame
	if t.Audit() {
		// A page of the audit log may carry one entry written before
		// entries were bounded (a refusal quoting a whole request): it
		// must still be read, or the log could never be verified or
		// exported past it.
		limit = max(limit, AuditMaxFrame)
	}
	return c.closeErr(wire.ReadExpect(str, limit, want, reply))
}

// AuditMaxFrame bounds a reply to an audit request: larger than other
// frames, for entries written before each was bounded to audit.MaxLeaf.
const AuditMaxFrame = 16 << 20

// AuditQuery reads one page of audit entries. What the switch returns
// depends on the certificate's role (see the server's rules).
func (c *Client) AuditQuery(ctx context.Context, q wire.AuditQuery) (wire.AuditEntries, error) {
	var r wire.AuditEntries
	err := c.request(ctx, wire.TAuditQuery, q, wire.TAuditEntries, &r)
	return r, err
}

// AuditExport reads the stored leaves from index from on, one page; an
// empty page means the end of the log (auditors only).
func (c *Client) AuditExport(ctx context.Context, from uint64) ([]wire.AuditLeaf, error) {
	var r wire.AuditLeaves
	err := c.request(ctx, wire.TAuditExport, wire.AuditExport{From: from}, wire.TAuditLeaves, &r)
	return r.Leaves, err
}

// AuditLeaves calls fn with every stored leaf from index from to the end
// of the log, a page at a time, and after each page with done (the next
// index) when progress is not nil (auditors only).
func (c *Client) AuditLeaves(ctx context.Context, from uint64, fn func(wire.AuditLeaf) error, progress func(next uint64)) error {
	for {
		leaves, err := c.AuditExport(ctx, from)
		if err != nil || len(leaves) == 0 {
			return err
		}
		for _, l := range leaves {
			if err := fn(l); err != nil {
				return err
			}
		}
		from = leaves[len(leaves)-1].Index + 1
		if progress != nil {
			progress(from)
		}
	}
}

// AuditCheckpoint returns the latest signed checkpoint (the switch signs a
// new one if the log has grown) and the switch's verifier key.
func (c *Client) AuditCheckpoint(ctx context.Context) (note []byte, vkey string, err error) {
	var r wire.AuditCheckpoints
	if err := c.request(ctx, wire.TAuditCheckpoint, wire.AuditCheckpointRequest{}, wire.TAuditCheckpoints, &r); err != nil {
		return nil, "", err
	}
	if len(r.Notes) != 1 {
		return nil, "", errProtocol("the switch sent no checkpoint")
	}
	return r.Notes[0], r.VerifierKey, nil
}

// AuditCosignatures returns, for each witness (a peer switch), the latest
// checkpoint of this switch's log it cosigned, and this switch's own
// witness key ("" when it is not in a network).
func (c *Client) AuditCosignatures(ctx context.Context) ([]wire.Cosignature, string, error) {
	var r wire.AuditCheckpoints
	if err := c.request(ctx, wire.TAuditCheckpoint, wire.AuditCheckpointRequest{}, wire.TAuditCheckpoints, &r); err != nil {
		return nil, "", err
	}
	return r.Cosigned, r.WitnessKey, nil
}

// AuditCheckpoints returns every stored checkpoint, smallest first, and the
// switch's verifier key (auditors only).
func (c *Client) AuditCheckpoints(ctx context.Context) (notes [][]byte, vkey string, err error) {
	after := uint64(0)
	for {
		var r wire.AuditCheckpoints
		if err := c.request(ctx, wire.TAuditCheckpoint, wire.AuditCheckpointRequest{All: true, After: after},
			wire.TAuditCheckpoints, &r); err != nil {
			return nil, "", err
		}
		vkey = r.VerifierKey
		progress := false
		for _, n := range r.Notes {
			cp, err := audit.OpenCheckpoint(n, vkey)
			if err != nil {
				return nil, "", err
			}
			if len(notes) > 0 && cp.Size <= after {
				return nil, "", errProtocol("the switch sent checkpoints out of order")
			}
			after, progress = cp.Size, true
			notes = append(notes, n)
		}
		if !progress || after == 0 {
			return notes, vkey, nil
		}
	}
}

// AuditProof returns the proof bundle of a telegram's audit entries.
func (c *Client) AuditProof(ctx context.Context, id telegram.ID) (audit.Bundle, error) {
	var r wire.AuditBundle
	err := c.request(ctx, wire.TAuditProof, wire.AuditProofRequest{ID: id}, wire.TAuditBundle, &r)
	return r.Bundle, err
}

func errProtocol(msg string) error { return fault.E("client", fault.Integrity, msg) }

// AuditConsistency returns the proof that the log's tree of size1 is a
// prefix of its tree of size2.
func (c *Client) AuditConsistency(ctx context.Context, size1, size2 uint64) ([][]byte, error) {
	var r wire.AuditProofHashes
	err := c.request(ctx, wire.TAuditConsistency, wire.AuditConsistencyRequest{Size1: size1, Size2: size2},
		wire.TAuditProofHashes, &r)
	return r.Hashes, err
}

// Cosign asks the switch, as a witness, to cosign a checkpoint of the
// caller's log (a peer switch's request, over its switch certificate).
func (c *Client) Cosign(ctx context.Context, req wire.CosignRequest) (wire.Cosigned, error) {
	var r wire.Cosigned
	err := c.request(ctx, wire.TCosign, req, wire.TCosigned, &r)
	return r, err
}
