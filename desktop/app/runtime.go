package app

import (
	"context"

	"github.com/wailsapp/wails/v2/pkg/runtime"
)

// wailsRuntime is the Wails runtime of the running window.
type wailsRuntime struct{ ctx context.Context }

func (w wailsRuntime) Emit(name string, data any) {
	if data == nil {
		runtime.EventsEmit(w.ctx, name)
		return
	}
	runtime.EventsEmit(w.ctx, name, data)
}

func (w wailsRuntime) Quit() { runtime.Quit(w.ctx) }
