package main

import "fmt"

type keysCmd struct {
	Rotate keysRotateCmd `cmd:"" help:"Make a new data-encryption key current; older records are re-sealed in the background (operator)."`
}

type keysRotateCmd struct{}

func (c *keysRotateCmd) Run(e *env) error {
	cl, err := e.dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	k, err := cl.RotateKeys(e.ctx)
	if err != nil {
		return err
	}
	if e.json {
		return e.emit(map[string]any{"current": k.Current, "keys": k.Keys})
	}
	_, err = fmt.Fprintf(e.stdout, "data key %d is current; older records are being re-sealed in the background (keys held: %v)\n", k.Current, k.Keys)
	return err
}
