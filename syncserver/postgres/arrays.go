package postgres

import (
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// Type oids of the values a Column holds.
const (
	OIDInt4        uint32 = 23
	OIDInt8        uint32 = 20
	OIDText        uint32 = 25
	OIDJSONB       uint32 = 3802
	OIDUUID        uint32 = 2950
	OIDTimestamptz uint32 = 1184
)

// arrayOIDs are the array types of the element types above.
var arrayOIDs = map[uint32]uint32{OIDInt4: 1007, OIDInt8: 1016, OIDText: 1009, OIDJSONB: 3807, OIDUUID: 2951,
	OIDTimestamptz: 1185}

// pgEpochMicros is the zero of PostgreSQL's timestamps.
var pgEpochMicros = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// Column is one column of a batch, built as a one-dimensional PostgreSQL
// array in binary format, to bind as one parameter of a statement that
// unnests it: no text formatting or parsing on either side, no per-value
// interface boxing, and no staging table (COPY cannot write a table under
// row-level security). Elem is its values' type, one of the OIDs above; the
// caller appends values of that type.
type Column struct {
	Elem    uint32
	buf     []byte
	n       int
	hasNull bool
}

// Reset empties the column, keeping its buffer and type.
func (c *Column) Reset() { c.buf, c.n, c.hasNull = c.buf[:0], 0, false }

// Len is the number of values appended.
func (c *Column) Len() int { return c.n }

// Null appends NULL.
func (c *Column) Null() {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 0xffffffff)
	c.n++
	c.hasNull = true
}

// UUID appends id.
func (c *Column) UUID(id uuid.UUID) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 16)
	c.buf = append(c.buf, id[:]...)
	c.n++
}

// NullUUID appends id, uuid.Nil as NULL.
func (c *Column) NullUUID(id uuid.UUID) {
	if id == uuid.Nil {
		c.Null()
		return
	}
	c.UUID(id)
}

// Int8 appends v.
func (c *Column) Int8(v int64) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 8)
	c.buf = binary.BigEndian.AppendUint64(c.buf, uint64(v))
	c.n++
}

// Int4 appends v.
func (c *Column) Int4(v int32) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 4)
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(v))
	c.n++
}

// Text appends s, which must be valid UTF-8 without NUL bytes (the server
// checks it as it would a text parameter).
func (c *Column) Text(s string) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(len(s)))
	c.buf = append(c.buf, s...)
	c.n++
}

// JSONB appends a JSON document (jsonb's binary format is a version byte,
// 1, then the text, which the server parses).
func (c *Column) JSONB(doc []byte) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(len(doc)+1))
	c.buf = append(c.buf, 1)
	c.buf = append(c.buf, doc...)
	c.n++
}

// Timestamptz appends t, to the microsecond, as PostgreSQL stores it.
func (c *Column) Timestamptz(t time.Time) {
	c.buf = binary.BigEndian.AppendUint32(c.buf, 8)
	c.buf = binary.BigEndian.AppendUint64(c.buf, uint64(t.UnixMicro()-pgEpochMicros))
	c.n++
}

// NullTimestamptz appends t, the zero time as NULL.
func (c *Column) NullTimestamptz(t time.Time) {
	if t.IsZero() {
		c.Null()
		return
	}
	c.Timestamptz(t)
}

// AppendArray appends the column as a binary array value to dst.
func (c *Column) AppendArray(dst []byte) []byte {
	flags := uint32(0)
	if c.hasNull {
		flags = 1
	}
	dst = binary.BigEndian.AppendUint32(dst, 1) // dimensions
	dst = binary.BigEndian.AppendUint32(dst, flags)
	dst = binary.BigEndian.AppendUint32(dst, c.Elem)
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.n))
	dst = binary.BigEndian.AppendUint32(dst, 1) // lower bound
	return append(dst, c.buf...)
}

// ArrayOID is the type oid of the column's array.
func (c *Column) ArrayOID() uint32 { return arrayOIDs[c.Elem] }

// Params are a statement's parameters in binary format (scalars and
// Columns' arrays), built one after the other in a buffer reused from one
// statement to the next.
type Params struct {
	buf     []byte
	ends    []int
	oids    []uint32
	values  [][]byte
	formats []int16
}

// Reset empties the parameters, keeping their buffers.
func (p *Params) Reset() { p.buf, p.ends, p.oids = p.buf[:0], p.ends[:0], p.oids[:0] }

// UUID appends a uuid parameter.
func (p *Params) UUID(id uuid.UUID) {
	p.buf = append(p.buf, id[:]...)
	p.end(OIDUUID)
}

// Int8 appends a bigint parameter.
func (p *Params) Int8(v int64) {
	p.buf = binary.BigEndian.AppendUint64(p.buf, uint64(v))
	p.end(OIDInt8)
}

// Array appends c as an array parameter.
func (p *Params) Array(c *Column) {
	p.buf = c.AppendArray(p.buf)
	p.end(c.ArrayOID())
}

func (p *Params) end(oid uint32) {
	p.ends = append(p.ends, len(p.buf))
	p.oids = append(p.oids, oid)
}

// Values returns the parameters with their type oids and formats (all
// binary), for pgconn's ExecParams or ExecPrepared; they are valid until the
// next Reset.
func (p *Params) Values() ([][]byte, []uint32, []int16) {
	p.values, p.formats = p.values[:0], p.formats[:0]
	start := 0
	for _, end := range p.ends {
		p.values = append(p.values, p.buf[start:end])
		p.formats = append(p.formats, 1)
		start = end
	}
	return p.values, p.oids, p.formats
}
