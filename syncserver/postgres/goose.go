package postgres

import (
	"io/fs"

	"github.com/pressly/goose/v3/lock"
)

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded folder is fixed at compile time
	}
	return sub
}

func mustLocker() lock.SessionLocker {
	l, err := lock.NewPostgresSessionLocker()
	if err != nil {
		panic(err) // only fails on invalid options, and we pass none
	}
	return l
}
