package server

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Process figures the standard collector lacks, for tg bench: bytes the
// switch wrote to storage (/proc/self/io) and its peak resident memory
// (/proc/self/status VmHWM). Linux only; elsewhere they read zero.
var (
	descDiskWrite = prometheus.NewDesc("dienbao_process_disk_write_bytes_total", "Bytes the switch process caused to be written to storage.", nil, nil)
	descPeakRSS   = prometheus.NewDesc("dienbao_process_peak_resident_memory_bytes", "Peak resident memory of the switch process, including pages of memory-mapped store files.", nil, nil)
	descAnon      = prometheus.NewDesc("dienbao_process_anonymous_memory_bytes", "Resident memory of the switch process that is its own (not pages of mapped files, which the kernel may reclaim).", nil, nil)
)

type procCollector struct{}

func (procCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDiskWrite
	ch <- descPeakRSS
	ch <- descAnon
}

func (procCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descDiskWrite, prometheus.CounterValue, procField("/proc/self/io", "write_bytes:", 1))
	ch <- prometheus.MustNewConstMetric(descPeakRSS, prometheus.GaugeValue, procField("/proc/self/status", "VmHWM:", 1024))
	ch <- prometheus.MustNewConstMetric(descAnon, prometheus.GaugeValue, procField("/proc/self/status", "RssAnon:", 1024))
}

// procField reads "name value [kB]" from a /proc file, times unit.
func procField(path, name string, unit float64) float64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == name {
			v, _ := strconv.ParseFloat(fs[1], 64)
			return v * unit
		}
	}
	return 0
}
