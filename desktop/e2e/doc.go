// Package e2e tests the built desktop binary end to end: it starts a server,
// runs the app in a virtual X display (Xvfb), signs in with synthetic keystrokes
// (xdotool), waits for the stores page and takes a screenshot (ImageMagick's
// import). The test is skipped unless LEADIFY_E2E=1; LEADIFY_DESKTOP_BIN names the
// binary and LEADIFY_E2E_SCREENSHOT, optionally, where the screenshot goes.
package e2e
