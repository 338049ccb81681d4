// Package frontend carries the desktop's user interface: the TypeScript/React
// sources beside this file are built by Vite into dist/, which is embedded here
// so the desktop binary serves it without any file on disk.
package frontend

import (
	"embed"
	"io/fs"
)

// dist always holds at least .keep (committed, and re-copied by Vite from
// public/), so the module compiles before the UI has been built.
//
//go:embed all:dist
var dist embed.FS

// Assets returns the built UI, with index.html at its root. Before `npm run
// build` it holds only an empty placeholder file.
func Assets() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path: fs.Sub cannot fail on it
	}
	return sub
}
