package billing

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/google/uuid"
)

// MailConfig is the SMTP relay invoices are sent through. An empty Addr
// disables email.
type MailConfig struct {
	Addr     string // host:port
	From     string // "Leadify <factures@leadify.ma>"
	Username string // empty: no authentication
	Password string
}

// ErrMailDisabled is returned when no SMTP relay is configured.
var ErrMailDisabled = errors.New("email is not configured")

// Mail is one message with attachments.
type Mail struct {
	To          string
	Subject     string
	Text        string
	Attachments []Attachment
}

// Attachment is a file attached to a Mail.
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// Send delivers m through the relay with net/smtp (STARTTLS when the relay
// offers it; PLAIN authentication when a username is set, which net/smtp
// allows only over TLS or to localhost). Fails with ErrMailDisabled, a bad
// address, or the relay's refusal.
func (c MailConfig) Send(m Mail) error {
	if c.Addr == "" {
		return ErrMailDisabled
	}
	from, err := mail.ParseAddress(c.From)
	if err != nil {
		return fmt.Errorf("mail from %q: %w", c.From, err)
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return fmt.Errorf("mail to %q: %w", m.To, err)
	}
	msg, err := m.encode(from, to)
	if err != nil {
		return err
	}
	var auth smtp.Auth
	if c.Username != "" {
		host := c.Addr
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host = host[:i]
		}
		auth = smtp.PlainAuth("", c.Username, c.Password, host)
	}
	if err := smtp.SendMail(c.Addr, auth, from.Address, []string{to.Address}, msg); err != nil {
		return fmt.Errorf("send mail to %s: %w", to.Address, err)
	}
	return nil
}

// encode writes the message as MIME: a UTF-8 text part and base64 attachments,
// lines at most 76 characters, CRLF line ends.
func (m Mail) encode(from, to *mail.Address) ([]byte, error) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", from.String())
	hdr("To", to.String())
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	hdr("Date", time.Now().UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+uuid.NewString()+"@leadify.ma>")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", `multipart/mixed; boundary="`+mw.Boundary()+`"`)
	b.WriteString("\r\n")
	tp, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"text/plain; charset=utf-8"},
		"Content-Transfer-Encoding": {"base64"}})
	if err != nil {
		return nil, err
	}
	writeBase64(tp, []byte(m.Text))
	for _, a := range m.Attachments {
		ap, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {mime.FormatMediaType(a.ContentType, map[string]string{"name": a.Name})},
			"Content-Disposition":       {mime.FormatMediaType("attachment", map[string]string{"filename": a.Name})},
			"Content-Transfer-Encoding": {"base64"}})
		if err != nil {
			return nil, err
		}
		writeBase64(ap, a.Data)
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeBase64(w interface{ Write([]byte) (int, error) }, data []byte) {
	enc := base64.StdEncoding.EncodeToString(data)
	for len(enc) > 76 {
		_, _ = w.Write([]byte(enc[:76] + "\r\n"))
		enc = enc[76:]
	}
	_, _ = w.Write([]byte(enc + "\r\n"))
}
