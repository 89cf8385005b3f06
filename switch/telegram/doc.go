// Package telegram holds dienbao's domain types: agency addresses,
// precedence, classification, telegram IDs, headers and receipts. It is a
// leaf: every other package may import it, it imports nothing of ours but
// switch/fault.
//
// Names are accepted in English and Vietnamese (FLASH or HOATOC / "Hỏa tốc",
// SECRET or TOIMAT / "Tối mật", ...) and always printed in English, which is
// what the JSON output and the audit log carry.
package telegram
