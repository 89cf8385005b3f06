package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dienbao/dienbao/store"
	"github.com/dienbao/dienbao/switch/daemon"
)

// The power-cut lab. The crash loop kills a switchd process; what it cannot
// show is a machine losing power, when what was written but not synced is
// gone too. Here the switch runs inside a virtual machine (qemu, KVM if
// DIENBAO_VM_ACCEL=kvm, else TCG), its data folder on a virtual disk that
// the host opens with cache=none (writes bypass the host's page cache, so
// killing qemu keeps exactly what reached the disk), and the power is cut
// by killing qemu with SIGKILL while the senders and receivers of the crash
// loop work from outside, over QUIC forwarded from 127.0.0.1. After each
// cut the machine boots again; at the end every telegram answered ACCEPTED
// is accounted for and the audit log verified, as in the crash loop.
//
//	DIENBAO_POWERCUT_CYCLES=30 go test ./cmd/switchd -run TestPowerCutLoop -v -timeout 60m
//
// It needs qemu-system-x86, busybox-static, cpio, e2fsprogs and a Debian
// cloud kernel (linux-image-cloud-amd64), from Debian's packages; it skips
// when DIENBAO_POWERCUT_CYCLES is not set.

// vmModules are the kernel modules the machine loads, in order (the cloud
// kernel has ext4 built in, not virtio).
var vmModules = []string{
	"drivers/virtio/virtio_ring", "drivers/virtio/virtio", "drivers/virtio/virtio_pci_legacy_dev",
	"drivers/virtio/virtio_pci_modern_dev", "drivers/virtio/virtio_pci", "drivers/block/virtio_blk",
	"net/core/failover", "drivers/net/net_failover", "drivers/net/virtio_net",
}

const vmInit = `#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in %s; do insmod /lib/$m.ko; done
ifconfig lo 127.0.0.1 up
ifconfig eth0 10.0.2.15 netmask 255.255.255.0 up
route add default gw 10.0.2.2
mount -t ext4 /dev/vda /mnt || { echo "dienbao-vm: no disk"; poweroff -f; }
exec /switchd --dev --data /mnt/site --listen 0.0.0.0:4433
`

// vm is a virtual machine that runs the switch on a disk image.
type vm struct {
	t              *testing.T
	kernel, initrd string
	disk           string
	addr           string // host side: 127.0.0.1:PORT, forwarded to the switch
}

// newVM builds the machine: a static switchd and busybox in an initramfs,
// the dev site (created on the host, whose copy keeps the identities that
// dial the forwarded port) on an ext4 disk image.
func newVM(t *testing.T, site, addr string) *vm {
	t.Helper()
	for _, tool := range []string{"qemu-system-x86_64", "cpio", "mkfs.ext4", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the power-cut lab needs %s (Debian: qemu-system-x86, cpio, e2fsprogs, busybox-static)", tool)
		}
	}
	kernels, _ := filepath.Glob("/boot/vmlinuz-*-cloud-amd64")
	if len(kernels) == 0 {
		t.Fatal("the power-cut lab needs a Debian cloud kernel (linux-image-cloud-amd64)")
	}
	kernel := kernels[len(kernels)-1]
	release := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	work := t.TempDir()
	root := filepath.Join(work, "initrd")
	for _, d := range []string{"bin", "lib", "proc", "sys", "dev", "mnt"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-o", filepath.Join(root, "switchd"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	run := func(c *exec.Cmd) {
		t.Helper()
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(c.Args, " "), err, out)
		}
	}
	run(build)
	busybox, _ := exec.LookPath("busybox")
	run(exec.Command("cp", busybox, filepath.Join(root, "bin", "busybox")))
	var names []string
	for _, m := range vmModules {
		run(exec.Command("cp", filepath.Join("/lib/modules", release, "kernel", m+".ko"), filepath.Join(root, "lib")))
		names = append(names, filepath.Base(m))
	}
	if err := os.WriteFile(filepath.Join(root, "init"), []byte(fmt.Sprintf(vmInit, strings.Join(names, " "))), 0o755); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(work, "initrd.cpio")
	run(exec.Command("sh", "-c", "cd "+root+" && find . | cpio -o -H newc --quiet > "+initrd))

	// The dev site, made on the host with the forwarded port in its
	// identities, then copied onto the disk.
	p := startSwitchd(t, buildSwitchd(t), "--dev", "--data", site, "--listen", addr, "--http", "127.0.0.1:0")
	dialWhenUp(t, p, filepath.Join(site, "ids", "HN.UBND")).Close()
	p.stop(t)
	disk := filepath.Join(work, "disk.img")
	run(exec.Command("truncate", "-s", "2G", disk))
	run(exec.Command("mkfs.ext4", "-q", "-F", disk))
	v := &vm{t: t, kernel: kernel, initrd: initrd, disk: disk, addr: addr}
	v.mounted(func(dir string) { run(exec.Command("cp", "-a", site, filepath.Join(dir, "site"))) })
	return v
}

// mounted calls fn with the disk image mounted (the machine must be off).
func (v *vm) mounted(fn func(dir string)) {
	v.t.Helper()
	dir := v.t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", v.disk, dir).CombinedOutput(); err != nil {
		v.t.Fatalf("mount the disk image: %v %s", err, out)
	}
	defer exec.Command("umount", dir).Run()
	fn(dir)
}

// boot powers the machine on.
func (v *vm) boot() *process {
	accel := "tcg"
	if os.Getenv("DIENBAO_VM_ACCEL") == "kvm" {
		accel = "kvm"
	}
	_, port, _ := strings.Cut(v.addr, ":")
	return startCmd(v.t, exec.Command("qemu-system-x86_64", "-accel", accel, "-m", "512", "-smp", "1",
		"-nographic", "-no-reboot", "-kernel", v.kernel, "-initrd", v.initrd,
		"-append", "console=ttyS0 panic=-1 quiet",
		"-drive", "file="+v.disk+",format=raw,if=virtio,cache=none",
		"-netdev", "user,id=n0,hostfwd=udp:127.0.0.1:"+port+"-:4433", "-device", "virtio-net-pci,netdev=n0"))
}

// cut cuts the power.
func (v *vm) cut(p *process) {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// openStore opens the store on the powered-off disk, as switchd in the
// machine would: its config names paths under /mnt/site.
func (v *vm) openStore(t *testing.T) *store.Store {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop", v.disk, dir).CombinedOutput(); err != nil {
		t.Fatalf("mount the disk image: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	site := filepath.Join(dir, "site")
	cfg, err := daemon.LoadConfig(filepath.Join(site, "switchd.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*string{&cfg.Data, &cfg.KeyFile} {
		*p = strings.Replace(*p, "/mnt/site", site, 1)
	}
	st, err := daemon.OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestPowerCutLoop(t *testing.T) {
	s := os.Getenv("DIENBAO_POWERCUT_CYCLES")
	if s == "" {
		t.Skip("set DIENBAO_POWERCUT_CYCLES to run the power-cut lab")
	}
	cycles, err := strconv.Atoi(s)
	if err != nil || cycles < 1 {
		t.Fatalf("DIENBAO_POWERCUT_CYCLES=%q", s)
	}
	start := time.Now()
	r := newCrashRig(t, filepath.Join(t.TempDir(), "dev"), freeUDPPort(t))
	v := newVM(t, r.data, r.addr)
	r.launch = v.boot
	r.finish = func() { v.cut(r.proc) }
	r.openStore = func() *store.Store { return v.openStore(t) }
	r.priorStarts = 1 // making the site on the host
	r.run(cycles)
	t.Logf("power-cut lab: %d cuts in %s", cycles, time.Since(start).Round(time.Second))
}
