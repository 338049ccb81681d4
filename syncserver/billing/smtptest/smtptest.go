// Package smtptest is an in-process SMTP server for tests: it speaks enough
// of RFC 5321 for net/smtp (EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing,
// RSET, NOOP, QUIT), records every accepted message, and has fault modes
// that refuse recipients or fail the data phase the way real relays do.
package smtptest

import (
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
)

// Message is one accepted message.
type Message struct {
	From string
	To   []string
	Data []byte // as received, dot-unstuffed, CRLF line ends
}

// Fault makes the server refuse part of a transaction.
type Fault int

// The fault modes.
const (
	FaultNone       Fault = iota
	FaultRejectRcpt       // 550 on every RCPT TO
	FaultTempData         // 451 after the data is received (a temporary failure)
)

// Server is a running SMTP server.
type Server struct {
	Addr string // host:port to dial

	ln       net.Listener
	mu       sync.Mutex
	messages []Message
	fault    Fault
	wg       sync.WaitGroup
}

// Start listens on a loopback port until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Listen serves on addr ("127.0.0.1:0" for any free loopback port) until
// Close: the demo's mail sink, outside tests.
func Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: ln.Addr().String(), ln: ln}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Close stops listening and waits for the sessions to end.
func (s *Server) Close() error {
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

// SetFault sets the fault mode for the next transactions.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Messages returns the messages accepted so far.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.session(textproto.NewConn(c))
		}()
	}
}

func (s *Server) currentFault() Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fault
}

func (s *Server) session(c *textproto.Conn) {
	reply := func(code int, msg string) bool { return c.PrintfLine("%d %s", code, msg) == nil }
	if !reply(220, "smtptest ESMTP ready") {
		return
	}
	var msg Message
	for {
		line, err := c.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			_ = c.PrintfLine("250-smtptest greets %s", arg)
			reply(250, "8BITMIME")
		case "HELO":
			reply(250, "smtptest")
		case "MAIL":
			msg = Message{From: addr(arg)}
			reply(250, "OK")
		case "RCPT":
			if msg.From == "" {
				reply(503, "MAIL first")
				continue
			}
			if s.currentFault() == FaultRejectRcpt {
				reply(550, "mailbox unavailable")
				continue
			}
			msg.To = append(msg.To, addr(arg))
			reply(250, "OK")
		case "DATA":
			if len(msg.To) == 0 {
				reply(503, "RCPT first")
				continue
			}
			reply(354, "end data with <CR><LF>.<CR><LF>")
			lines, err := c.ReadDotLines()
			if err != nil {
				return
			}
			if s.currentFault() == FaultTempData {
				reply(451, "try again later")
				msg = Message{}
				continue
			}
			msg.Data = []byte(strings.Join(lines, "\r\n") + "\r\n")
			s.mu.Lock()
			s.messages = append(s.messages, msg)
			s.mu.Unlock()
			msg = Message{}
			reply(250, "queued")
		case "RSET":
			msg = Message{}
			reply(250, "OK")
		case "NOOP":
			reply(250, "OK")
		case "QUIT":
			reply(221, "bye")
			return
		default:
			reply(502, "command not implemented")
		}
	}
}

// addr extracts the address from "FROM:<a@b>" or "TO:<a@b> SIZE=…".
func addr(arg string) string {
	if i := strings.IndexByte(arg, '<'); i >= 0 {
		if j := strings.IndexByte(arg[i:], '>'); j > 0 {
			return arg[i+1 : i+j]
		}
	}
	_, a, _ := strings.Cut(arg, ":")
	return strings.TrimSpace(a)
}
