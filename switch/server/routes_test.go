package server_test

import (
	"os"
	"strings"
	"testing"

	"github.com/dienbao/dienbao/switch/server"
)

// The README's authorization table is the one the switch enforces.
// DIENBAO_PRINT_TABLE=1 prints it, to paste.
func TestAuthorizationTableInREADME(t *testing.T) {
	table := server.AuthorizationTable()
	if os.Getenv("DIENBAO_PRINT_TABLE") != "" {
		t.Log("\n" + table)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), table) {
		t.Fatalf("README.md does not show the authorization table the switch enforces; it should contain:\n%s", table)
	}
}
