// Package manpage owns the commands' manual pages: made from their kong
// command definitions (mango-kong), with sections of our own, written
// as roff that reads the same in any locale.
package manpage

import (
	"fmt"
	"strings"

	"github.com/alecthomas/kong"
	mangokong "github.com/alecthomas/mango-kong"
	"github.com/muesli/roff"
)

// Section is a manual page section of our own: a title and its text.
type Section struct{ Title, Text string }

// Build makes the manual page of app in the given section (1: commands,
// 8: system administration), with extra sections after the generated ones.
func Build(app *kong.Application, section uint, extra ...Section) string {
	man := mangokong.NewManPage(section, app)
	for _, s := range extra {
		man = man.WithSection(s.Title, strings.TrimSpace(s.Text))
	}
	return ASCII(man.Build(roff.NewDocument()))
}

// ASCII writes every non-ASCII character of a roff document as a groff
// escape (\[u1EB9]), so that the page reads the same whatever the
// reader's locale (groff without preconv reads bytes as Latin-1).
func ASCII(doc string) string {
	var b strings.Builder
	for _, r := range doc {
		if r < 0x80 {
			b.WriteRune(r)
			continue
		}
		fmt.Fprintf(&b, "\\[u%04X]", r)
	}
	return b.String()
}
