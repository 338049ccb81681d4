// Command desktop is the Leadify desktop app: a Wails window whose UI (package
// frontend) calls the services of package app.
package main

import (
	"log"
	"os"

	"github.com/wailsapp/wails/v2"
	"github.com/wailsapp/wails/v2/pkg/options"
	"github.com/wailsapp/wails/v2/pkg/options/assetserver"

	"github.com/leadify/leadify/desktop/app"
	"github.com/leadify/leadify/desktop/localstore"
	"github.com/leadify/leadify/frontend"
)

func main() {
	dbPath, err := localstore.DefaultPath()
	if err != nil {
		log.Fatal(err)
	}
	a := app.New(app.Options{DBPath: dbPath, ServerURL: os.Getenv("LEADIFY_SERVER_URL")})
	err = wails.Run(&options.App{
		Title:            "Leadify",
		Width:            1180,
		Height:           760,
		MinWidth:         720,
		MinHeight:        520,
		BackgroundColour: &options.RGBA{R: 244, G: 246, B: 250, A: 255},
		AssetServer:      &assetserver.Options{Assets: frontend.Assets()},
		OnStartup:        a.Startup,
		OnShutdown:       a.Shutdown,
		Bind:             []any{a.Session, a.Stores, a.Sync},
	})
	if err != nil {
		log.Fatal(err)
	}
}
