package store

// AppendUnbounded appends e as the next audit entry without bounding it,
// as a switch did before entries were bounded (audit.Bounded): for the
// tests that such a log stays verifiable and exportable.
func (s *Store) AppendUnbounded(e AuditEntry) error {
	return s.submit(&op{apply: func(c *commitCtx) error {
		e.Index = c.st.aseq
		e.At = unixUTC(c.now)
		if err := c.s.alog.Append(c.audit(), e); err != nil {
			return err
		}
		c.st.aseq++
		return nil
	}})
}
