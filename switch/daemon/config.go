// Package daemon turns configuration into a running switch: it reads and
// validates the production config file, bootstraps a dev site (CA,
// certificates, directory, identity folders) for `switchd --dev`, builds
// the logger and wires the server. cmd/switchd only parses flags and calls
// Run.
package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dienbao/dienbao/certs"
	"github.com/dienbao/dienbao/crypto"
	"github.com/dienbao/dienbao/switch/audit"
	"github.com/dienbao/dienbao/switch/fault"
	"github.com/dienbao/dienbao/switch/filing"
	"github.com/dienbao/dienbao/switch/server"
	"github.com/dienbao/dienbao/switch/telegram"
	"github.com/pelletier/go-toml/v2"
)

// Config is the production configuration file (TOML). Relative paths are
// resolved against the config file's folder.
//
//	listen    = "0.0.0.0:4433"         # UDP
//	data      = "/var/lib/dienbao"     # the store lives in data/store
//	ca        = "ca.pem"               # the network CA certificate
//	cert      = "switch.pem"           # this switch's certificate
//	key       = "switch.key"           # and its key (mode 0600)
//	directory = "directory.toml"       # the agency directory
//	crl       = "ca/crl.pem"           # the revocation list (tg certs revoke / tg certs crl); reloaded when it changes
//	key_file  = "/media/key/dienbao.key"   # the key-encryption key: a key file (64 hex characters) ...
//	# passphrase_file = "/run/secrets/dienbao"  # ... or a passphrase (Argon2id); or DIENBAO_PASSPHRASE
//	name      = "HN-SWITCH-1"          # name in audit records
//	http      = "127.0.0.1:9480"       # monitoring: /metrics, /healthz, /readyz; the console too when on loopback (default: none)
//	console   = "0.0.0.0:9443"         # the console over HTTPS: operators' and auditors' client certificates (default: none)
//	console_hosts = ["switch.example"] # Host names the console answers (default: the switch certificate's)
//	log       = "json"                 # json | console
//	memory_limit = 201326592           # bytes: the Go runtime's soft limit (default 192 MiB)
//	procs        = 0                   # threads running Go code at once (0: twice the CPUs)
//
//	[limits]
//	max_body       = 16777216          # bytes per telegram body
//	max_subject    = 256
//	max_ref        = 128
//	max_addressees = 64
//	window         = 32                # unacknowledged deliveries per precedence per session
//
//	[custody]
//	ack_timeout    = "2m"              # a delivery unacknowledged this long: session closed, redelivered
//	max_attempts   = 5                 # unacknowledged hand-outs before a telegram is parked
//	timer_interval = "1s"              # how often expiry and speed-of-service deadlines are checked
//	clock_tolerance = "2m"             # a clock jump beyond it suspends filings, expiry and overdue decisions
//
//	[speed_of_service]                 # overdue after this long waiting (defaults shown)
//	flash     = "10m"
//	immediate = "30m"
//	priority  = "3h"
//	routine   = "6h"
//
//	[storage]
//	low_watermark      = 1073741824    # bytes free: below, ROUTINE filings are refused, then PRIORITY, then IMMEDIATE
//	critical_watermark = 268435456     # bytes free: below, nothing is filed (delivery goes on)
//	reserve            = 134217728     # bytes kept allocated beside the store, released below the critical watermark
//	reclaim_interval   = "10m"         # how often delivered bodies' space is reclaimed (also under pressure)
//
//	[journal]
//	retention = "720h"                 # settled telegrams are kept this long for tg retrieve and tg resend
//
//	[audit]
//	origin              = "dienbao/HN-SWITCH-1"  # names the log in checkpoints; fixed when the data folder is created
//	checkpoint_interval = "30s"        # sign a checkpoint this often when the log has grown
//	refusal_interval = "10s"           # refusals are aggregated in the audit log per this period
//	archive_after    = "2160h"         # entries older than this move to archive files (default 90 days; "0s": never by itself)
//
//	[end_to_end]                       # end-to-end sealing (package envelope)
//	allow_plain = []                   # classifications below SECRET that may be filed unsealed, e.g. ["UNCLASSIFIED"]; SECRET and TOP SECRET never
//
//	[network]                          # in a network of switches (network.go); absent: this switch serves its directory alone
type Config struct {
	Listen    string `toml:"listen"`
	Data      string `toml:"data"`
	CA        string `toml:"ca"`
	Cert      string `toml:"cert"`
	Key       string `toml:"key"`
	Directory string `toml:"directory"`
	// CRL is the revocation list file (PEM or DER, signed by the CA);
	// optional, strongly advised. Reloaded when it changes and on SIGHUP.
	CRL string `toml:"crl"`
	// KeyFile or PassphraseFile (or the DIENBAO_PASSPHRASE environment
	// variable) give the key-encryption key. Never inside Data.
	KeyFile        string `toml:"key_file"`
	PassphraseFile string `toml:"passphrase_file,omitempty"`
	// KeyPassphraseFile holds the passphrase of the switch's TLS key (and
	// of the issuing CA's key, for [revocation] renew_from) when they are
	// encrypted (tg certs request --encrypt).
	KeyPassphraseFile string `toml:"key_passphrase_file,omitempty"`
	Name              string `toml:"name"`
	Log               string `toml:"log"`
	// HTTP is the monitoring listener's address (metrics, health, console);
	// empty: none. Keep it on loopback unless the site's access control
	// stands in front of it.
	HTTP string `toml:"http,omitempty"`
	// Console is the HTTPS console's address (operators' and auditors'
	// client certificates); empty: none. ConsoleHosts are the Host
	// header values it answers (default: the switch certificate's names
	// and addresses).
	Console      string   `toml:"console,omitempty"`
	ConsoleHosts []string `toml:"console_hosts,omitempty"`
	// MemoryLimit is the Go runtime's soft memory limit in bytes (default
	// DefaultMemoryLimit; GOMEMLIMIT in the environment wins).
	MemoryLimit int64 `toml:"memory_limit"`
	// Procs is how many threads run Go code at once (GOMAXPROCS; default
	// twice the CPUs, see Procs; GOMAXPROCS in the environment wins).
	Procs      int            `toml:"procs"`
	Limits     Limits         `toml:"limits"`
	Custody    Custody        `toml:"custody"`
	Speed      SpeedOfService `toml:"speed_of_service"`
	Audit      Audit          `toml:"audit"`
	Storage    Storage        `toml:"storage"`
	Journal    Journal        `toml:"journal"`
	Admission  Admission      `toml:"admission"`
	Network    Network        `toml:"network,omitempty"`
	Group      Group          `toml:"group,omitempty"`
	EndToEnd   EndToEnd       `toml:"end_to_end,omitempty"`
	Revocation Revocation     `toml:"revocation"`
}

// Revocation is the [revocation] table: how the switch keeps its CRL
// fresh, and how it fails.
type Revocation struct {
	// RenewFrom is the issuing CA's folder (ca.pem, ca.key, revoked.json):
	// the switch signs a fresh CRL by itself RenewBefore the next-update
	// time of the one in force, valid for Validity. Empty: CRLs come
	// from tg certs crl.
	RenewFrom   string    `toml:"renew_from,omitempty"`
	RenewBefore *Duration `toml:"renew_before"` // default 7 days
	Validity    *Duration `toml:"validity"`     // default 30 days
	// Grace is how long a CRL past its next-update time is still used
	// (logged, audited, alerted) before every certificate is refused.
	Grace *Duration `toml:"grace"` // default 3 days
	// WarnBefore: the CRL or a certificate the switch holds that ends
	// within it is logged and audited once a day.
	WarnBefore *Duration `toml:"warn_before"` // default 14 days
}

// Defaults of the [revocation] table.
const (
	DefaultCRLRenewBefore = 7 * 24 * time.Hour
	DefaultCRLValidity    = 30 * 24 * time.Hour
	DefaultCRLGrace       = 3 * 24 * time.Hour
	DefaultExpiryWarning  = 14 * 24 * time.Hour
)

func (r Revocation) check(crl string) error {
	if r.RenewFrom != "" && crl == "" {
		return errors.New("renew_from needs the crl setting: the file the switch writes its CRL to")
	}
	for name, d := range map[string]*Duration{"renew_before": r.RenewBefore, "validity": r.Validity, "grace": r.Grace, "warn_before": r.WarnBefore} {
		if d != nil && *d < 0 {
			return fmt.Errorf("%s cannot be negative", name)
		}
	}
	if r.RenewFrom != "" && orDefault(r.Validity, DefaultCRLValidity) <= orDefault(r.RenewBefore, DefaultCRLRenewBefore) {
		return errors.New("validity must be longer than renew_before, or the switch would sign a new CRL at every tick")
	}
	return nil
}

// renewal is the server's CRL renewal, if configured.
func (c *Config) renewal() *server.CRLRenew {
	if c.Revocation.RenewFrom == "" {
		return nil
	}
	return &server.CRLRenew{CADir: c.Revocation.RenewFrom, Passphrase: c.keyPassphrase(),
		Before: orDefault(c.Revocation.RenewBefore, DefaultCRLRenewBefore), Validity: orDefault(c.Revocation.Validity, DefaultCRLValidity)}
}

// keyPassphrase gives the passphrase of encrypted key files: the
// key_passphrase_file, else the environment's (certs.PassphraseFromEnv).
func (c *Config) keyPassphrase() certs.Passphrase {
	if c.KeyPassphraseFile == "" {
		return certs.PassphraseFromEnv
	}
	return func(string) ([]byte, error) { return certs.PassphraseFile(c.KeyPassphraseFile) }
}

func orDefault(d *Duration, def time.Duration) time.Duration {
	if d == nil {
		return def
	}
	return time.Duration(*d)
}

// EndToEnd is the [end_to_end] table: the site's policy on sealing.
type EndToEnd struct {
	// AllowPlain lists the classifications that may be filed without
	// end-to-end sealing: CONFIDENTIAL and UNCLASSIFIED at most.
	AllowPlain []string `toml:"allow_plain,omitempty"`
}

// allowPlain parses AllowPlain.
func (e EndToEnd) allowPlain() ([]telegram.Classification, error) {
	var out []telegram.Classification
	for _, s := range e.AllowPlain {
		c, err := telegram.ParseClassification(s)
		if err != nil {
			return nil, err
		}
		if c >= telegram.Secret {
			return nil, fault.Errorf("config", fault.Invalid, "[end_to_end] allow_plain: %s telegrams are always sealed end to end", c)
		}
		out = append(out, c)
	}
	return out, nil
}

// Admission is the [admission] table: admission control, which limits
// ROUTINE (then PRIORITY) filings while the switch is saturated so that
// FLASH and IMMEDIATE keep their headroom (switch/filing/admission.go).
type Admission struct {
	// Enabled: on unless set to false.
	Enabled *bool `toml:"enabled"`
	// TargetDelay is the queue delay (how long filings wait for the
	// commit loop, averaged over a tenth of a second) above which the
	// switch counts as saturated; default 5ms.
	TargetDelay Duration `toml:"target_delay"`
	// Floor is the lowest rate, filings per second, it limits to;
	// default 200.
	Floor int `toml:"floor"`
}

// policy is the admission policy the table asks for.
func (a Admission) policy() filing.AdmissionPolicy {
	if a.Enabled != nil && !*a.Enabled {
		return filing.AdmissionPolicy{}
	}
	p := filing.AdmissionPolicy{Target: time.Duration(a.TargetDelay), Floor: float64(a.Floor)}
	if p.Target <= 0 {
		p.Target = 5 * time.Millisecond
	}
	if p.Floor <= 0 {
		p.Floor = 200
	}
	return p
}

// Journal is the [journal] table: how long a settled telegram (delivered,
// expired, cancelled, given up) is kept for retrieval and resending
// before it is purged (default 720h, 30 days; a negative value keeps no
// body once settled). See store/journal.go.
type Journal struct {
	Retention Duration `toml:"retention"`
}

// Storage is the [storage] table: free-space watermarks and the reserve in
// bytes (see switch/server/storage.go), and the reclaim schedule.
type Storage struct {
	LowWatermark      int64    `toml:"low_watermark"`
	CriticalWatermark int64    `toml:"critical_watermark"`
	Reserve           int64    `toml:"reserve"`
	ReclaimInterval   Duration `toml:"reclaim_interval"`
}

// Audit is the [audit] table.
type Audit struct {
	// Origin names the audit log in its signed checkpoints (default
	// "dienbao/" and the switch's name). It is fixed, with the log's signing
	// key, when the data folder is created.
	Origin             string   `toml:"origin,omitempty"`
	CheckpointInterval Duration `toml:"checkpoint_interval"`
	// RefusalInterval is the period over which refusals are aggregated in
	// the audit log (default 10 s; see the README's security section).
	RefusalInterval Duration `toml:"refusal_interval"`
	// ArchiveAfter is the age past which entries are moved, hourly, from
	// the store to archive files in the data folder's audit-archive
	// (store/archive.go); default 90 days; 0 never by itself (an auditor
	// can still ask: tg audit archive). A pointer: absent and "0s" differ.
	ArchiveAfter *Duration `toml:"archive_after"`
}

// Custody is the [custody] table.
type Custody struct {
	AckTimeout    Duration `toml:"ack_timeout"`
	MaxAttempts   int      `toml:"max_attempts"`
	TimerInterval Duration `toml:"timer_interval"`
	// ClockTolerance is how far the wall clock may move at once, or be
	// behind the last recorded time at start, before the switch stops
	// trusting it (default 2m; see switch/clock).
	ClockTolerance Duration `toml:"clock_tolerance"`
}

// SpeedOfService is the [speed_of_service] table.
type SpeedOfService struct {
	Flash     Duration `toml:"flash"`
	Immediate Duration `toml:"immediate"`
	Priority  Duration `toml:"priority"`
	Routine   Duration `toml:"routine"`
}

func (s SpeedOfService) targets() map[telegram.Precedence]time.Duration {
	return map[telegram.Precedence]time.Duration{telegram.Flash: time.Duration(s.Flash), telegram.Immediate: time.Duration(s.Immediate),
		telegram.Priority: time.Duration(s.Priority), telegram.Routine: time.Duration(s.Routine)}
}

// Duration is a time.Duration written as "90s", "10m", "6h" in TOML.
type Duration time.Duration

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil || v < 0 {
		return fmt.Errorf("%q is not a duration like 90s, 10m or 6h", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes a Go duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Limits is the [limits] table.
type Limits struct {
	MaxBody       int64 `toml:"max_body"`
	MaxSubject    int   `toml:"max_subject"`
	MaxRef        int   `toml:"max_ref"`
	MaxAddressees int   `toml:"max_addressees"`
	Window        int   `toml:"window"`
	// RequestTimeout: a stream opened without its request frame within
	// this long is dropped (default 10s).
	RequestTimeout Duration `toml:"request_timeout"`
	// Guards against exhaustion; 0 takes the default (see README).
	MaxStreams           int      `toml:"max_streams"`
	ConnWindow           int      `toml:"connection_window"`
	FilingRate           int      `toml:"filing_rate"`
	HandshakeRate        int      `toml:"handshake_rate"`
	RetryAbove           int      `toml:"retry_above"`
	MaxSessionsPerCert   int      `toml:"max_sessions_per_cert"`
	MaxSessionsPerAgency int      `toml:"max_sessions_per_agency"`
	MaxSessions          int      `toml:"max_sessions"`
	MaxTerminals         int      `toml:"max_terminals"`
	IdleTimeout          Duration `toml:"idle_timeout"`
	HandshakeTimeout     Duration `toml:"handshake_timeout"`
	// Filing bodies being received, in bytes: across the switch, the part
	// kept for FLASH, per connection; and how long a body may make no
	// progress before it is cut.
	BodyBudget       int64    `toml:"body_budget"`
	BodyFlashReserve int64    `toml:"body_flash_reserve"`
	ConnBodyBudget   int64    `toml:"connection_body_budget"`
	BodyTimeout      Duration `toml:"body_timeout"`
}

func (l Limits) filing() filing.Limits {
	return filing.Limits{MaxBody: l.MaxBody, MaxSubject: l.MaxSubject, MaxRef: l.MaxRef, MaxAddressees: l.MaxAddressees}.WithDefaults()
}

// LoadConfig reads, defaults and validates a config file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fault.E("config", fault.Invalid, "cannot read the config file", err)
	}
	return ParseConfig(data, path)
}

// ParseConfig reads, defaults and validates a config file's content; path
// names it in errors, and relative paths are resolved from its folder.
func ParseConfig(data []byte, path string) (*Config, error) {
	const op = "config"
	var c Config
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var sme *toml.StrictMissingError
		if errors.As(err, &sme) {
			return nil, fault.E(op, fault.Invalid, path+": unknown setting: "+sme.String())
		}
		return nil, fault.E(op, fault.Invalid, path+" is not valid TOML", err)
	}
	base := filepath.Dir(path)
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	for _, p := range []*string{&c.Data, &c.CA, &c.Cert, &c.Key, &c.Directory, &c.KeyFile, &c.PassphraseFile, &c.CRL, &c.KeyPassphraseFile, &c.Revocation.RenewFrom} {
		abs(p)
	}
	if c.Listen == "" {
		c.Listen = "127.0.0.1:4433"
	}
	if c.Log == "" {
		c.Log = "json"
	}
	for name, v := range map[string]string{"data": c.Data, "ca": c.CA, "cert": c.Cert, "key": c.Key, "directory": c.Directory} {
		if v == "" {
			return nil, fault.Errorf(op, fault.Invalid, "%s: the setting %q is required", path, name)
		}
	}
	if _, err := c.Secret(); err != nil {
		return nil, fault.E(op, fault.Invalid, path+": "+err.Error())
	}
	if c.Log != "json" && c.Log != "console" {
		return nil, fault.Errorf(op, fault.Invalid, "%s: log must be \"json\" or \"console\"", path)
	}
	if c.Procs < 0 {
		return nil, fault.Errorf(op, fault.Invalid, "%s: procs cannot be negative (0: twice the CPUs)", path)
	}
	if err := c.Revocation.check(c.CRL); err != nil {
		return nil, fault.E(op, fault.Invalid, path+": [revocation] "+err.Error())
	}
	if a := c.Audit.ArchiveAfter; a != nil && *a < 0 {
		return nil, fault.Errorf(op, fault.Invalid, "%s: [audit] archive_after cannot be negative", path)
	}
	if c.Audit.Origin != "" {
		if err := audit.CheckOrigin(c.Audit.Origin); err != nil {
			return nil, fault.E(op, fault.Invalid, path+": [audit] "+err.Error())
		}
	}
	l := c.Limits
	if l.MaxBody < 0 || l.MaxSubject < 0 || l.MaxRef < 0 || l.MaxAddressees < 0 || l.Window < 0 || c.Custody.MaxAttempts < 0 ||
		l.MaxStreams < 0 || l.ConnWindow < 0 || l.FilingRate < 0 || l.HandshakeRate < 0 || l.RetryAbove < 0 || l.MaxSessionsPerCert < 0 || l.MaxSessionsPerAgency < 0 || l.MaxSessions < 0 || l.MaxTerminals < 0 ||
		l.BodyBudget < 0 || l.BodyFlashReserve < 0 || l.ConnBodyBudget < 0 {
		return nil, fault.Errorf(op, fault.Invalid, "%s: limits cannot be negative", path)
	}
	if st := c.Storage; st.LowWatermark < 0 || st.CriticalWatermark < 0 || st.Reserve < 0 {
		return nil, fault.Errorf(op, fault.Invalid, "%s: [storage] sizes cannot be negative", path)
	} else if st.LowWatermark > 0 && st.CriticalWatermark > st.LowWatermark {
		return nil, fault.Errorf(op, fault.Invalid, "%s: [storage] critical_watermark is above low_watermark", path)
	}
	if _, err := c.Network.build(); err != nil {
		return nil, fault.E(op, fault.Invalid, path+": "+err.Error())
	}
	if _, err := c.EndToEnd.allowPlain(); err != nil {
		return nil, fault.E(op, fault.Invalid, path+": "+err.Error())
	}
	return &c, nil
}

// PassphraseEnv is the environment variable that may hold the passphrase.
const PassphraseEnv = "DIENBAO_PASSPHRASE"

// Secret says where the key-encryption key comes from: exactly one of
// key_file, passphrase_file or DIENBAO_PASSPHRASE, and never a file inside
// the data folder.
func (c *Config) Secret() (crypto.Secret, error) {
	env := os.Getenv(PassphraseEnv)
	n := 0
	for _, set := range []bool{c.KeyFile != "", c.PassphraseFile != "", env != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return crypto.Secret{}, fmt.Errorf("give exactly one of key_file, passphrase_file or %s for the key-encryption key", PassphraseEnv)
	}
	for _, f := range []string{c.KeyFile, c.PassphraseFile} {
		if f != "" && c.Data != "" && inside(c.Data, f) {
			return crypto.Secret{}, fmt.Errorf("%s is inside the data folder: keep the key-encryption key elsewhere", f)
		}
		if f != "" {
			if err := certs.CheckPrivate(f); err != nil && !os.IsNotExist(err) {
				return crypto.Secret{}, err
			}
		}
	}
	switch {
	case c.KeyFile != "":
		return crypto.Secret{KeyFile: c.KeyFile}, nil
	case env != "":
		return crypto.Secret{Passphrase: []byte(env)}, nil
	}
	b, err := os.ReadFile(c.PassphraseFile)
	if err != nil {
		return crypto.Secret{}, fmt.Errorf("cannot read the passphrase file: %w", err)
	}
	pass := strings.TrimRight(string(b), "\r\n")
	if pass == "" {
		return crypto.Secret{}, fmt.Errorf("the passphrase file %s is empty", c.PassphraseFile)
	}
	return crypto.Secret{Passphrase: []byte(pass)}, nil
}

func inside(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
