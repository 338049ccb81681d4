// Package invoiceseal is the server's seal on an issued invoice's PDF: an
// ed25519 signature over the SHA-256 of the PDF's bytes and over the summary
// the invoice's replicated row shows (number, period, totals, line count) and
// the digest of its canonical form (what the QR code's claim signs). The
// seal is appended to the PDF as a comment after its end ("%LEADIFY-SEAL …"),
// which PDF readers ignore, so the PDF a seller opens, forwards or keeps is
// the sealed one. The desktop checks it offline with the server's public
// keys: any changed byte of the PDF, or a row whose figures differ from the
// sealed ones, fails.
package invoiceseal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Errors of reading and checking a seal.
var (
	// ErrNoSeal: the PDF carries no seal (a draft, or a PDF from elsewhere).
	ErrNoSeal = errors.New("invoice PDF is not sealed")
	// ErrMalformed: the seal cannot be read.
	ErrMalformed = errors.New("malformed invoice seal")
	// ErrBadSeal: the seal does not verify (unknown key, wrong signature, or
	// the PDF changed since it was sealed).
	ErrBadSeal = errors.New("invoice seal does not verify")
)

// Seal is what the server asserts about an issued invoice.
type Seal struct {
	KeyID       string
	Store       uuid.UUID
	Invoice     uuid.UUID
	Number      int64
	PeriodStart time.Time // UTC, second precision
	PeriodEnd   time.Time // exclusive
	IssuedAt    time.Time
	// Totals in centimes, as the invoice's row carries them.
	COD, DeliveryFees, CODFees, ReturnFees, PlatformFees, VATRateBP, VAT, Net int64
	// Lines is the number of invoice lines.
	Lines int
	// Digest is the SHA-256 of the invoice's canonical JSON; PDF the SHA-256
	// of the PDF before the seal.
	Digest, PDF [32]byte
	Signature   []byte
}

// marker starts the seal's line after the PDF's %%EOF.
const marker = "\n%LEADIFY-SEAL "

const version = "leadify-invoice-seal-v1"

// fields is the number of lines of the signed message after its version.
const fields = 18

var b64 = base64.RawURLEncoding

// Message is the byte string signed: one field per line, in a fixed order.
func (s *Seal) Message() []byte {
	i := strconv.FormatInt
	lines := []string{version, s.KeyID, s.Store.String(), s.Invoice.String(), i(s.Number, 10),
		i(s.PeriodStart.Unix(), 10), i(s.PeriodEnd.Unix(), 10), i(s.IssuedAt.Unix(), 10),
		i(s.COD, 10), i(s.DeliveryFees, 10), i(s.CODFees, 10), i(s.ReturnFees, 10), i(s.PlatformFees, 10),
		i(s.VATRateBP, 10), i(s.VAT, 10), i(s.Net, 10), strconv.Itoa(s.Lines),
		hex.EncodeToString(s.Digest[:]), hex.EncodeToString(s.PDF[:])}
	return []byte(strings.Join(lines, "\n"))
}

// Append seals pdf with key under s's fields (its PDF digest and signature
// are filled here) and returns the sealed PDF. It fails for a key id that
// would not read back.
func Append(pdf []byte, s Seal, keyID string, key ed25519.PrivateKey) ([]byte, error) {
	if keyID == "" || len(keyID) > 64 || strings.ContainsAny(keyID, " \n\r") {
		return nil, fmt.Errorf("%w: key id %q", ErrMalformed, keyID)
	}
	s.KeyID = keyID
	s.PDF = sha256.Sum256(pdf)
	msg := s.Message()
	sig := ed25519.Sign(key, msg)
	out := make([]byte, 0, len(pdf)+len(marker)+b64.EncodedLen(len(msg))+90)
	out = append(out, pdf...)
	out = append(out, marker...)
	out = append(out, b64.EncodeToString(msg)...)
	out = append(out, ' ')
	out = append(out, b64.EncodeToString(sig)...)
	return append(out, '\n'), nil
}

// Split separates a sealed PDF into the PDF as it was sealed and its seal.
// It fails with ErrNoSeal or ErrMalformed; it checks no signature.
func Split(sealed []byte) ([]byte, Seal, error) {
	at := bytes.LastIndex(sealed, []byte(marker))
	if at < 0 {
		return nil, Seal{}, ErrNoSeal
	}
	line := sealed[at+len(marker):]
	if n := len(line); n == 0 || line[n-1] != '\n' || bytes.IndexByte(line, '\n') != n-1 {
		return nil, Seal{}, fmt.Errorf("%w: the seal is not the last line", ErrMalformed)
	}
	parts := strings.Split(string(line[:len(line)-1]), " ")
	if len(parts) != 2 {
		return nil, Seal{}, fmt.Errorf("%w: expected a message and a signature", ErrMalformed)
	}
	msg, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, Seal{}, fmt.Errorf("%w: message: %w", ErrMalformed, err)
	}
	sig, err := b64.DecodeString(parts[1])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return nil, Seal{}, fmt.Errorf("%w: signature", ErrMalformed)
	}
	s, err := parseMessage(msg)
	if err != nil {
		return nil, Seal{}, err
	}
	s.Signature = sig
	return sealed[:at], s, nil
}

// parseMessage reads a message, accepting only the canonical form (the one
// Message writes back byte for byte).
func parseMessage(msg []byte) (Seal, error) {
	lines := strings.Split(string(msg), "\n")
	if len(lines) != fields+1 || lines[0] != version {
		return Seal{}, fmt.Errorf("%w: not a %s message", ErrMalformed, version)
	}
	var s Seal
	var err error
	bad := func(what string) (Seal, error) { return Seal{}, fmt.Errorf("%w: %s", ErrMalformed, what) }
	s.KeyID = lines[1]
	if s.Store, err = uuid.Parse(lines[2]); err != nil {
		return bad("store")
	}
	if s.Invoice, err = uuid.Parse(lines[3]); err != nil {
		return bad("invoice")
	}
	ints := make([]int64, 13)
	for i := range ints {
		if ints[i], err = strconv.ParseInt(lines[4+i], 10, 64); err != nil {
			return bad("field " + strconv.Itoa(4+i))
		}
	}
	s.Number = ints[0]
	s.PeriodStart, s.PeriodEnd, s.IssuedAt = time.Unix(ints[1], 0).UTC(), time.Unix(ints[2], 0).UTC(), time.Unix(ints[3], 0).UTC()
	s.COD, s.DeliveryFees, s.CODFees, s.ReturnFees, s.PlatformFees = ints[4], ints[5], ints[6], ints[7], ints[8]
	s.VATRateBP, s.VAT, s.Net = ints[9], ints[10], ints[11]
	if ints[12] < 0 || ints[12] > 1<<31 {
		return bad("lines")
	}
	s.Lines = int(ints[12])
	for i, dst := range [][]byte{s.Digest[:], s.PDF[:]} {
		b, err := hex.DecodeString(lines[17+i])
		if err != nil || len(b) != sha256.Size {
			return bad("digest")
		}
		copy(dst, b)
	}
	if !bytes.Equal(s.Message(), msg) {
		return bad("not in canonical form")
	}
	return s, nil
}

// Keys are the server's invoice public keys by id.
type Keys map[string]ed25519.PublicKey

// Verify checks a sealed PDF: the seal's signature under the key it names,
// and that the PDF is byte for byte the one sealed. It returns the seal
// (whose fields the caller compares with what it shows) and fails with
// ErrNoSeal, ErrMalformed or ErrBadSeal.
func (k Keys) Verify(sealed []byte) (Seal, error) {
	pdf, s, err := Split(sealed)
	if err != nil {
		return Seal{}, err
	}
	pub, ok := k[s.KeyID]
	if !ok || len(pub) != ed25519.PublicKeySize {
		return Seal{}, fmt.Errorf("%w: unknown key %q", ErrBadSeal, s.KeyID)
	}
	if !ed25519.Verify(pub, s.Message(), s.Signature) {
		return Seal{}, fmt.Errorf("%w: signature", ErrBadSeal)
	}
	if sha256.Sum256(pdf) != s.PDF {
		return Seal{}, fmt.Errorf("%w: the PDF changed after it was sealed", ErrBadSeal)
	}
	return s, nil
}

// KeysPath is where the server publishes its invoice public keys (a
// KeyList as JSON), relative to its base URL.
const KeysPath = "/verify/invoice?keys"

// KeyList is the JSON the server publishes at KeysPath.
type KeyList struct {
	Keys []PublicKey `json:"keys"`
}

// PublicKey is one invoice-signing public key.
type PublicKey struct {
	ID        string `json:"id"`
	PublicKey []byte `json:"publicKey"` // base64 in JSON
}
