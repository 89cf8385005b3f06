package client

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"github.com/dienbao/dienbao/switch/fault"
)

// Attachments. A telegram with files beside its text carries them in its
// body as a MIME message (RFC 2045, 2046): multipart/mixed, the text first
// (text/plain; charset=utf-8), then each file as an attachment part with
// its name (RFC 2231 filename*), media type, size (Content-Length) and
// SHA-256 (Content-Digest, RFC 9530), in binary. The switch carries the
// body as bytes, so a sealed telegram's attachments, names included, are
// sealed with it; the body's size limit covers text and files together.
// A body that is not such a message is text, as before.

// mimePrefix begins every body with attachments.
const mimePrefix = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="

// Attachment is a file to send with a telegram's text.
type Attachment struct {
	Name string // the file's base name
	Type string // media type; empty: guessed from the name, else the content
	Data []byte
}

// Received is an attachment of a received telegram.
type Received struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // hexadecimal, of Data
	// DigestOK: the digest the sender put beside the file matches it.
	DigestOK bool   `json:"digest_ok"`
	Data     []byte `json:"-"`
}

// ComposeBody is the body of a telegram of text and attachments: the text
// as it is when there are none, else a MIME multipart/mixed message.
func ComposeBody(text []byte, atts []Attachment) ([]byte, error) {
	if len(atts) == 0 {
		return text, nil
	}
	boundary, err := newBoundary(text, atts)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(mimePrefix + strconv.Quote(boundary) + "\r\n\r\n")
	w := multipart.NewWriter(&b)
	if err := w.SetBoundary(boundary); err != nil {
		return nil, err
	}
	part := func(h textproto.MIMEHeader, data []byte) error {
		p, err := w.CreatePart(h)
		if err == nil {
			_, err = p.Write(data)
		}
		return err
	}
	if err := part(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"}, "Content-Transfer-Encoding": {"8bit"}}, text); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, a := range atts {
		name := SafeName(a.Name)
		if seen[name] {
			return nil, fault.Errorf("attach", fault.Invalid, "two attachments are named %q", name)
		}
		seen[name] = true
		typ := a.Type
		if typ == "" {
			typ = MediaType(name, a.Data)
		}
		sum := sha256.Sum256(a.Data)
		h := textproto.MIMEHeader{
			"Content-Type":              {typ},
			"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": name})},
			"Content-Transfer-Encoding": {"binary"},
			"Content-Length":            {strconv.Itoa(len(a.Data))},
			"Content-Digest":            {"sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"},
		}
		if err := part(h, a.Data); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// newBoundary is a random boundary found in neither the text nor a file.
func newBoundary(text []byte, atts []Attachment) (string, error) {
	for {
		var r [16]byte
		if _, err := rand.Read(r[:]); err != nil {
			return "", err
		}
		b := "dienbao-" + hex.EncodeToString(r[:])
		clash := bytes.Contains(text, []byte(b))
		for _, a := range atts {
			clash = clash || bytes.Contains(a.Data, []byte(b))
		}
		if !clash {
			return b, nil
		}
	}
}

// SplitBody reads a received body: its text, and its attachments if it
// is a MIME message made by ComposeBody (or any multipart/mixed message
// of that form); a body that is not is all text.
func SplitBody(body []byte) (text []byte, atts []Received, err error) {
	if !bytes.HasPrefix(body, []byte(mimePrefix)) {
		return body, nil, nil
	}
	hdrEnd := bytes.Index(body, []byte("\r\n\r\n"))
	if hdrEnd < 0 {
		return body, nil, nil
	}
	_, params, err := mime.ParseMediaType(strings.TrimPrefix(string(body[len("MIME-Version: 1.0\r\n"):hdrEnd]), "Content-Type: "))
	if err != nil || params["boundary"] == "" {
		return body, nil, nil
	}
	r := multipart.NewReader(bytes.NewReader(body[hdrEnd+4:]), params["boundary"])
	for i := 0; ; i++ {
		p, err := r.NextRawPart()
		if err == io.EOF {
			return text, atts, nil
		}
		if err != nil {
			return nil, nil, fault.E("attach", fault.Integrity, "the telegram's attachments are unreadable", err)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, nil, fault.E("attach", fault.Integrity, "the telegram's attachments are unreadable", err)
		}
		if i == 0 && p.FileName() == "" {
			text = data
			continue
		}
		sum := sha256.Sum256(data)
		a := Received{Name: SafeName(p.FileName()), Type: p.Header.Get("Content-Type"), Size: int64(len(data)),
			SHA256: hex.EncodeToString(sum[:]), Data: data}
		if d, ok := strings.CutPrefix(p.Header.Get("Content-Digest"), "sha-256=:"); ok {
			want, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(d, ":"))
			a.DigestOK = err == nil && bytes.Equal(want, sum[:])
		}
		if n := p.Header.Get("Content-Length"); n != "" && n != strconv.Itoa(len(data)) {
			a.DigestOK = false
		}
		atts = append(atts, a)
	}
}

// SafeName is a file name fit to save under: the base name, without
// control characters, path separators or a leading dot ("attachment" if
// nothing is left).
func SafeName(name string) string {
	name = filepath.Base(strings.ReplaceAll(name, "\\", "/"))
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '/' || r == 0x202e || r == 0x202d || (r >= 0x2066 && r <= 0x2069) {
			return -1
		}
		return r
	}, name)
	name = strings.TrimLeft(strings.TrimSpace(name), ".")
	if name == "" {
		return "attachment"
	}
	if len(name) > 200 {
		name = name[:200]
	}
	return name
}

// MediaType guesses a file's media type from its name, else its content.
func MediaType(name string, data []byte) string {
	if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
		return t
	}
	return http.DetectContentType(data)
}

// AttachmentsSize is the body size text and atts make, for a check
// before sending.
func AttachmentsSize(text []byte, atts []Attachment) int64 {
	n := int64(len(text))
	for _, a := range atts {
		n += int64(len(a.Data)) + 512 // a part's headers
	}
	return n
}

// String describes an attachment in one line.
func (a Received) String() string {
	ok := "sha-256 ok"
	if !a.DigestOK {
		ok = "SHA-256 DOES NOT MATCH"
	}
	return fmt.Sprintf("%s (%s, %d bytes, %s)", a.Name, a.Type, a.Size, ok)
}
