// Leadify: parsed UTF-8 fonts and their subsets are kept per process.
//
// Upstream parses a UTF-8 TrueType font in every document that adds it, and
// parses it again at output to cut the subset of the runes the document used,
// then compresses that subset and a 128 KiB CIDToGIDMap: most of the CPU of a
// short invoice. Here a font is parsed once per process (keyed by the bytes'
// identity: the bytes given to AddUTF8FontFromBytes must not change
// afterwards), and each distinct (font, rune set) is cut and compressed once.

package fpdf

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"sync"
	"unsafe"
)

// parsedFont is a font parsed once: its definition (without per-document
// state) and the parse to clone for each document.
type parsedFont struct {
	def      fontDefType
	utf8File *utf8FontFile // never written after parsing: documents clone it
}

type parsedKey struct {
	data *byte
	size int
	name string // the font key: family and style
}

var (
	parsedMu    sync.Mutex
	parsedFonts = map[parsedKey]*parsedFont{}
)

// parsedUTF8Font returns the parse of the TrueType font in data added under
// fontkey, parsing it on first use.
func parsedUTF8Font(fontkey string, data []byte) (*parsedFont, error) {
	if len(data) == 0 {
		return nil, errors.New("empty font")
	}
	key := parsedKey{unsafe.SliceData(data), len(data), fontkey}
	parsedMu.Lock()
	defer parsedMu.Unlock()
	if p, ok := parsedFonts[key]; ok {
		return p, nil
	}
	utf8File := newUTF8Font(&fileReader{array: data})
	if err := utf8File.parseFile(); err != nil {
		return nil, err
	}
	def := fontDefType{
		Tp:   "UTF8",
		Name: fontkey,
		Desc: FontDescType{
			Ascent:       int(utf8File.Ascent),
			Descent:      int(utf8File.Descent),
			CapHeight:    utf8File.CapHeight,
			Flags:        utf8File.Flags,
			FontBBox:     utf8File.Bbox,
			ItalicAngle:  utf8File.ItalicAngle,
			StemV:        utf8File.StemV,
			MissingWidth: round(utf8File.DefaultWidth),
		},
		Up: int(round(utf8File.UnderlinePosition)),
		Ut: round(utf8File.UnderlineThickness),
		Cw: utf8File.CharWidths,
	}
	var err error
	if def.i, err = generateFontID(def); err != nil {
		return nil, err
	}
	p := &parsedFont{def: def, utf8File: utf8File}
	parsedFonts[key] = p
	return p, nil
}

// clone returns a copy of a parsed font to cut a subset from: its own reader
// position; the maps and slices it shares with utf are replaced, never
// written, by GenerateCutFont.
func (utf *utf8FontFile) clone() *utf8FontFile {
	c := *utf
	c.fileReader = &fileReader{array: utf.fileReader.array}
	return &c
}

// cutFont is what a document embeds for one font and rune set.
type cutFont struct {
	fontFile     []byte // the subset font, compressed
	fontFileSize int    // its size uncompressed
	cidToGIDMap  []byte // compressed
	widths       string // the /W entry
}

// maxCutFonts bounds the subsets kept: past it the cache starts over.
const maxCutFonts = 256

var (
	cutMu    sync.Mutex
	cutFonts = map[string]*cutFont{}
)

// cutUTF8Font returns the subset of font for its used runes (rune 0 already
// removed), cutting and compressing it on first use of that rune set.
func cutUTF8Font(font *fontDefType) *cutFont {
	runes := make([]int, 0, len(font.usedRunes))
	for r, n := range font.usedRunes {
		// The runes that count: upstream writes widths for runes > 255 only
		// when marked used (n != 0), and cuts glyphs for every key.
		if r <= 255 || n != 0 {
			runes = append(runes, r)
		} else {
			runes = append(runes, -r-1)
		}
	}
	slices.Sort(runes)
	var key strings.Builder
	key.WriteString(font.i)
	key.WriteString(font.Name)
	var b [4]byte
	for _, r := range runes {
		binary.BigEndian.PutUint32(b[:], uint32(int32(r)))
		key.Write(b[:])
	}
	k := key.String()
	cutMu.Lock()
	c, ok := cutFonts[k]
	cutMu.Unlock()
	if ok {
		return c
	}
	utf := font.utf8File
	stream := utf.GenerateCutFont(font.usedRunes)
	codes := utf.CodeSymbolDictionary
	delete(codes, 0)
	cidToGID := make([]byte, 256*256*2)
	for cc, glyph := range codes {
		cidToGID[cc*2] = byte(glyph >> 8)
		cidToGID[cc*2+1] = byte(glyph & 0xFF)
	}
	mem := xmem.compress(cidToGID)
	c = &cutFont{fontFileSize: len(stream), cidToGIDMap: mem.copy(), widths: cidWidths(font, utf.LastRune)}
	mem.release()
	mem = xmem.compress(stream)
	c.fontFile = mem.copy()
	mem.release()
	cutMu.Lock()
	if len(cutFonts) >= maxCutFonts {
		clear(cutFonts)
	}
	cutFonts[k] = c
	cutMu.Unlock()
	return c
}

// UseRunes marks the runes of s used in the UTF-8 font added as family and
// style, as writing them would: they are in the document's subset whether
// or not its text has them. Documents that mark a common set share one cut
// subset (see cutUTF8Font) instead of each cutting its own.
func (f *Fpdf) UseRunes(familyStr, styleStr, s string) {
	font, ok := f.fonts[getFontKey(familyStr, styleStr)]
	if !ok || font.usedRunes == nil {
		return
	}
	for _, r := range s {
		font.usedRunes[int(r)] = int(r)
	}
}
