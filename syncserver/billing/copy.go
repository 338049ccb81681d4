package billing

import (
	"encoding/binary"
	"time"

	"github.com/google/uuid"
)

// copyEncoder writes rows in PostgreSQL's binary COPY format: no text
// formatting or parsing on either side, and no per-value interface boxing.
type copyEncoder struct{ buf []byte }

// pgEpoch is the zero of PostgreSQL's timestamps.
var pgEpochMicros = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

func (e *copyEncoder) header() {
	e.buf = append(e.buf, "PGCOPY\n\xff\r\n\x00"...)
	e.buf = binary.BigEndian.AppendUint32(e.buf, 0) // flags
	e.buf = binary.BigEndian.AppendUint32(e.buf, 0) // header extension
}

func (e *copyEncoder) trailer() { e.buf = binary.BigEndian.AppendUint16(e.buf, 0xffff) }

func (e *copyEncoder) tuple(fields int) { e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(fields)) }

func (e *copyEncoder) null() { e.buf = binary.BigEndian.AppendUint32(e.buf, 0xffffffff) }

func (e *copyEncoder) uuid(id uuid.UUID) {
	e.buf = binary.BigEndian.AppendUint32(e.buf, 16)
	e.buf = append(e.buf, id[:]...)
}

// nullUUID writes uuid.Nil as NULL.
func (e *copyEncoder) nullUUID(id uuid.UUID) {
	if id == uuid.Nil {
		e.null()
		return
	}
	e.uuid(id)
}

func (e *copyEncoder) int8(v int64) {
	e.buf = binary.BigEndian.AppendUint32(e.buf, 8)
	e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(v))
}

func (e *copyEncoder) int4(v int32) {
	e.buf = binary.BigEndian.AppendUint32(e.buf, 4)
	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(v))
}

func (e *copyEncoder) text(s string) {
	e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(len(s)))
	e.buf = append(e.buf, s...)
}

// timestamptz writes t as microseconds since 2000-01-01 UTC.
func (e *copyEncoder) timestamptz(t time.Time) {
	e.int8(t.UnixMicro() - pgEpochMicros)
}
