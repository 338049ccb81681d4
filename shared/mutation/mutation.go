package mutation

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Mutation is one user action on one lead. Its name and version identify it
// on the wire forever: a change of meaning is a new version, never an edit of
// an old one. The set of mutations is closed: only this package implements
// Mutation.
//
// Apply makes the same checks for every mutation, in this order, each
// rejected with its own code and a plain-language reason:
//   - CodeNotFound: cur is nil, has another id than LeadID, or is deleted;
//   - CodeForbidden: env.Actor lacks the mutation's permission in the store
//     ("You are not allowed to confirm leads in this store");
//   - CodeNotHolder: the actor is not a seller or admin (who may act on any
//     lead of the store) and does not hold the lead ("Lead was claimed by
//     Sara", "Lead is back in the pool"). A holder whose lease lapsed still
//     holds the lead: lease expiry changes who may claim it, not who holds it;
//   - CodeInvalid: the arguments are malformed (as [Decode] would say);
//
// then the mutation's own checks (CodeTransition for a status change the
// table of shared/lead forbids from the lead's current status, CodeStale for
// an edit whose old value no longer matches, CodeInvalid for values the lead
// cannot take).
//
// An applied mutation returns a copy of the lead with UpdatedAt = env.Now,
// its lease renewed to env.Now + env.Lease when the actor holds the lead
// before and after (and env.Lease > 0), CallbackAt zero unless the status is
// callback, and Version untouched (the versioned writer stamps it); and at
// least one event whose id comes from the arguments, by the actor, at
// env.Now, with FromStatus and ToStatus set when the status changed.
type Mutation interface {
	// Name is the mutation's stable name, "RecordCall".
	Name() string
	// Version is the version of the mutation's arguments and meaning.
	Version() int
	// LeadID is the id of the lead the mutation applies to.
	LeadID() uuid.UUID
	// Apply returns the lead after the mutation and the events it appends, or
	// why the mutation cannot apply to cur. It is pure: it reads nothing but
	// its arguments and never modifies cur. A nil cur, or one with another id
	// or deleted, is rejected with CodeNotFound.
	Apply(env Env, cur *Lead) (Result, *Rejection)

	// validate reports arguments that are malformed whatever the lead.
	validate() error
}

// MaxArgsSize is the largest encoded argument object, in bytes, that
// [Decode] accepts and [Encode] produces.
const MaxArgsSize = 64 << 10

// ErrUnknown is wrapped by the error [Decode] returns for a name and version
// that name no mutation of this build (a newer client's, or garbage).
var ErrUnknown = errors.New("unknown mutation")

// decoders maps "Name@Version" to the function that reads the arguments.
var decoders = map[string]func([]byte) (Mutation, error){
	"AddNote@1":         decodeAs[AddNote],
	"AssignLead@1":      decodeAs[AssignLead],
	"CancelLead@1":      decodeAs[CancelLead],
	"ConfirmLead@1":     decodeAs[ConfirmLead],
	"EditLead@1":        decodeAs[EditLead],
	"MarkDuplicate@1":   decodeAs[MarkDuplicate],
	"RecordCall@1":      decodeAs[RecordCall],
	"ReleaseLead@1":     decodeAs[ReleaseLead],
	"UnmarkDuplicate@1": decodeAs[UnmarkDuplicate],
}

func key(name string, version int) string {
	return name + "@" + strconv.Itoa(version)
}

// Known returns the "Name@Version" of every mutation this build knows, sorted.
func Known() []string {
	known := make([]string, 0, len(decoders))
	for k := range decoders {
		known = append(known, k)
	}
	slices.Sort(known)
	return known
}

// SetHash returns the hex SHA-256 of [Known] joined by newlines: the
// mutation-set hash a client sends in its handshake.
func SetHash() string {
	sum := sha256.Sum256([]byte(strings.Join(Known(), "\n")))
	return hex.EncodeToString(sum[:])
}

// Decode reads the arguments of mutation name at version. It is strict and
// fails, with an error that names the mutation, for: an unknown name or
// version (wrapping [ErrUnknown]); args larger than [MaxArgsSize] or not valid
// UTF-8; anything but one JSON object (trailing data included); unknown
// fields, fields not written in lower case or written twice; values of the wrong type or an unknown outcome; and arguments that
// are invalid whatever the lead (a missing lead or event id, text that is too
// long or holds control characters, a bad item, an empty edit…). Times are
// returned in UTC.
func Decode(name string, version int, args []byte) (Mutation, error) {
	decode, ok := decoders[key(name, version)]
	if !ok {
		return nil, fmt.Errorf("decode %s: %w", key(name, version), ErrUnknown)
	}
	m, err := decodeChecked(decode, args)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", key(name, version), err)
	}
	return m, nil
}

func decodeChecked(decode func([]byte) (Mutation, error), args []byte) (Mutation, error) {
	if len(args) > MaxArgsSize {
		return nil, fmt.Errorf("arguments are %d bytes, more than %d", len(args), MaxArgsSize)
	}
	if !utf8.Valid(args) {
		return nil, errors.New("arguments are not valid UTF-8")
	}
	if err := checkKeys(args); err != nil {
		return nil, err
	}
	m, err := decode(args)
	if err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	// Re-encoding can be longer than the input (a raw U+2028 is written
	// escaped); refuse what Encode would refuse, so that every decoded
	// mutation can be sent on.
	canon, err := marshal(m)
	if err != nil {
		return nil, err
	}
	if len(canon) > MaxArgsSize {
		return nil, fmt.Errorf("arguments are %d bytes once encoded, more than %d", len(canon), MaxArgsSize)
	}
	return m, nil
}

// decodeAs reads args as one JSON object of type M, refusing unknown fields
// and trailing data.
func decodeAs[M Mutation](args []byte) (Mutation, error) {
	var m M
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the arguments")
	}
	if rc, ok := any(&m).(*RecordCall); ok {
		rc.CallbackAt = rc.CallbackAt.UTC()
	}
	return m, nil
}

// checkKeys fails if an object key of args is not written exactly as Encode
// writes keys (lower-case ASCII letters, digits and underscores) or appears
// twice in its object: encoding/json would match it regardless of case, or
// keep the last value, and two readers could disagree on what was sent. It
// leaves syntax errors to the decoder.
func checkKeys(args []byte) error {
	type frame struct {
		keys    map[string]bool // nil for an array
		wantKey bool
	}
	var stack []*frame
	dec := json.NewDecoder(bytes.NewReader(args))
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		top := (*frame)(nil)
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.wantKey {
			if tok == json.Delim('}') {
				stack = stack[:len(stack)-1]
			} else {
				key, _ := tok.(string)
				if !isKey(key) || top.keys[key] {
					return fmt.Errorf("bad or repeated field %q", key)
				}
				top.keys[key] = true
				top.wantKey = false
				continue
			}
		} else {
			switch tok {
			case json.Delim('{'):
				stack = append(stack, &frame{keys: map[string]bool{}, wantKey: true})
				continue
			case json.Delim('['):
				stack = append(stack, &frame{})
				continue
			case json.Delim(']'):
				stack = stack[:len(stack)-1]
			}
		}
		// A value is complete: in an object, a key or the end comes next.
		if len(stack) > 0 && stack[len(stack)-1].keys != nil {
			stack[len(stack)-1].wantKey = true
		}
	}
}

func isKey(s string) bool {
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return s != ""
}

// Encode returns the name, version and JSON arguments of m, the form the
// outbox stores and Push sends. It fails for a nil m, for arguments [Decode]
// would refuse as invalid, and for arguments larger than [MaxArgsSize].
func Encode(m Mutation) (name string, version int, args []byte, err error) {
	if m == nil {
		return "", 0, nil, errors.New("encode mutation: nil")
	}
	name, version = m.Name(), m.Version()
	if err := m.validate(); err != nil {
		return "", 0, nil, fmt.Errorf("encode %s: %w", key(name, version), err)
	}
	args, err = marshal(m)
	if err != nil {
		return "", 0, nil, fmt.Errorf("encode %s: %w", key(name, version), err)
	}
	if len(args) > MaxArgsSize {
		return "", 0, nil, fmt.Errorf("encode %s: arguments are %d bytes, more than %d", key(name, version), len(args), MaxArgsSize)
	}
	return name, version, args, nil
}

// marshal encodes m as compact JSON without HTML escaping.
func marshal(m Mutation) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
