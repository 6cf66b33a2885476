# The figures of make bench from run.sh's measurements: prints the table and
# writes the JSON (-v json=FILE) with every repetition. Input: one line per
# measurement, tab-separated: fig rep who size key=value... (run.sh's record).
# Every ratio is taken within one repetition; min and median are over repetitions.
# POSIX awk (Debian's mawk): no gawk extensions.

function isnum(v) { return v ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ }
function jstr(s) {
	gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, " ", s)
	return "\"" s "\""
}
function jval(v) { return isnum(v) ? v + 0 : jstr(v) }
function num(v) { return isnum(v) ? v + 0 : 0 }
function fmt(v, f) { return v == "" ? "-" : sprintf(f, v) }

# A series of values per name: add, then min / median.
function put(name, v) { SN[name]++; SV[name, SN[name]] = v }
function smin(name,   i, m) {
	if (!SN[name]) return ""
	m = SV[name, 1]
	for (i = 2; i <= SN[name]; i++) if (SV[name, i] < m) m = SV[name, i]
	return m
}
function smed(name,   i, j, n, t, a) {
	n = SN[name]
	if (!n) return ""
	for (i = 1; i <= n; i++) a[i] = SV[name, i]
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function smax(name,   i, m) {
	if (!SN[name]) return ""
	m = SV[name, 1]
	for (i = 2; i <= SN[name]; i++) if (SV[name, i] > m) m = SV[name, i]
	return m
}
function jseries(name) {
	return "{\"min\":" jnum(smin(name)) ",\"median\":" jnum(smed(name)) ",\"max\":" jnum(smax(name)) "}"
}
function jnum(v) { return v == "" ? "null" : sprintf("%.6g", v) }

# One measurement as a JSON object: its key=value pairs plus derived ones (extra).
function jrecord(i, extra,   k, s) {
	s = "{\"rep\":" jval(REP[i])
	for (k = 1; k <= NK[i]; k++) s = s "," jstr(KEY[i, k]) ":" jval(V[i, KEY[i, k]])
	return s extra "}"
}
function addwho(fig, w) { if (!((fig, w) in SEEN)) { SEEN[fig, w] = 1; NW[fig]++; WHO_OF[fig, NW[fig]] = w } }
# One target line; machine-wide ratios are "noisy" when the machine was busy or a margin came out negative.
function target(name, value, limit, le, unit, machine,   ok) {
	if (value == "") ok = "n/a"
	else if (machine && (value <= 0 || V[sy, "background_busy_pct"] > 10)) ok = "noisy: not judged"
	else ok = (le ? value <= limit : value >= limit) ? "met" : "MISSED"
	printf "  %-66s %8s  %s %s%s\n", name, fmt(value, "%.3f"), (le ? "<=" : ">="), limit unit, (ok == "" ? "" : "  " ok)
	if (md != "") printf "| %s | %s | %s %s | %s |\n", name, fmt(value, "%.3f"), (le ? "<=" : ">="), limit unit, ok > md
	NT++
	TJ[NT] = "{\"target\":" jstr(name) ",\"value\":" jnum(value) ",\"limit\":" limit ",\"le\":" (le ? "true" : "false") \
		",\"status\":" jstr(ok) "}"
}

{
	N++
	FIG[N] = $1; REP[N] = $2; WHO[N] = $3; SIZE[N] = $4; NK[N] = 0
	for (f = 5; f <= NF; f++) {
		p = index($f, "=")
		if (!p) continue
		k = substr($f, 1, p - 1)
		NK[N]++; KEY[N, NK[N]] = k; V[N, k] = substr($f, p + 1)
	}
	if ($1 == "sys" || $1 == "param" || $1 == "time") GLOBAL[$1] = N
	if ($1 == "a" || $1 == "b" || $1 == "c" || $1 == "d") { addwho($1, $3); if ($2 + 0 > MAXREP[$1]) MAXREP[$1] = $2 + 0 }
	if ($1 == "a") IA[$2, $3] = N
	if ($1 == "b") IB[$2, $4, $3] = N
	if ($1 == "c") IC[$2, $3] = N
	if ($1 == "d") ID[$3] = N
	if ($1 == "ceiling") ICEIL[$3] = N
	if ($1 == "fail") { NF_++; FAILMSG[NF_] = $3 ": " V[N, "msg"] }
	if ($1 == "skip") { NS_++; SKIPMSG[NS_] = $3 ": " V[N, "msg"] }
	if ($1 == "na") NA[$3] = V[N, "msg"]
}

END {
	sy = GLOBAL["sys"]; pa = GLOBAL["param"]; tm = GLOBAL["time"]
	FLOOR = "xdp_count"; BASE = "recvmmsg_rx"
	# receivers on the 2-queue pair (fed on both queues) have a floor of their own
	FLOOR2 = V[pa, "floor_2q"]
	n2 = split(V[pa, "receivers_2q"], L2, " ")
	for (k = 1; k <= n2; k++) TWOQ[L2[k]] = 1
	W1 = "ferryd_xdp_1w"; W2 = "ferryd_xdp_2w"
	WC = "ferryd_clients"; WZ = "ferryd_clients_zc"; W4 = "ferryd_clients4"; WB = "ferryd_clients_bp"
	ISCLIENT[WC] = ISCLIENT[WZ] = ISCLIENT[W4] = ISCLIENT[WB] = 1

	# ---- (a) CPU per packet ----
	for (i = 1; i <= N; i++) {
		if (FIG[i] != "a") continue
		hz = num(V[i, "hz"]); d = num(V[i, "delivered"]); s = num(V[i, "sent"])
		busy = num(V[i, "user"]) + num(V[i, "nice"]) + num(V[i, "system"]) + num(V[i, "irq"]) + num(V[i, "softirq"])
		if (hz > 0 && d > 0) {
			NS[i] = busy / hz * 1e9 / d
			# own CPU: schedstat run time (ns) of the receiver and its consumers where
			# recorded, else utime+stime ticks (10 ms each: coarse over a short run)
			if (V[i, "sched_ns"] != "") PNS[i] = (num(V[i, "sched_ns"]) + num(V[i, "cons_sched_ns"])) / d
			else PNS[i] = num(V[i, "proc_ticks"]) / hz * 1e9 / d
			HAVE[i] = 1
		}
		# schedstat run time (ns, not cut to ticks): the receiver process alone (ferryd
		# alone in a client row); its consumer's, in a client row
		if (d > 0 && V[i, "sched_ns"] != "") SCH[i] = num(V[i, "sched_ns"]) / d
		if (d > 0 && V[i, "cons_sched_ns"] != "") CSCH[i] = num(V[i, "cons_sched_ns"]) / d
		DPCT[i] = s > 0 ? 100 * d / s : ""
	}
	for (i = 1; i <= N; i++) {
		if (FIG[i] != "a" || !HAVE[i]) continue
		r = REP[i]; w = WHO[i]; x = ""
		fl = ia(r, floor_of(w)); B_ = base_of(w); ba = ia(r, B_)
		put("a_ns_" w, NS[i]); put("a_pns_" w, PNS[i]); x = x ",\"busy_ns_per_pkt\":" jnum(NS[i]) ",\"proc_ns_per_pkt\":" jnum(PNS[i])
		if (DPCT[i] != "") { put("a_dpct_" w, DPCT[i]); x = x ",\"delivered_pct\":" jnum(DPCT[i]) }
		if (fl && HAVE[fl]) {
			MARGIN[i] = NS[i] - NS[fl]; HAVEM[i] = 1
			put("a_margin_" w, MARGIN[i]); x = x ",\"margin_ns_per_pkt\":" jnum(MARGIN[i])
		}
		if (ba && HAVE[ba]) {
			put("a_rtot_" w, NS[i] / NS[ba]); x = x ",\"busy_vs_" B_ "\":" jnum(NS[i] / NS[ba])
			if (PNS[ba] > 0) { put("a_rproc_" w, PNS[i] / PNS[ba]); x = x ",\"proc_vs_" B_ "\":" jnum(PNS[i] / PNS[ba]) }
		}
		# with several workers: the smallest worker's share of the datagrams
		if (V[i, "workers_rx"] != "") {
			nw = split(V[i, "workers_rx"], WR, ","); tot = 0; mn = ""
			for (k = 1; k <= nw; k++) { tot += WR[k]; if (mn == "" || WR[k] + 0 < mn) mn = WR[k] + 0 }
			if (tot > 0) { put("a_wmin_" w, 100 * mn / tot); x = x ",\"smallest_worker_pct\":" jnum(100 * mn / tot) }
		}
		# ferryd's datagrams per RX batch: at a fixed rate, fewer wake-ups make each packet cheaper
		nb = statf(V[i, "ferryd_stats"], "rx_batches")
		if (nb > 0) { put("a_ppb_" w, statf(V[i, "ferryd_stats"], "rx_packets") / nb); x = x ",\"datagrams_per_batch\":" jnum(statf(V[i, "ferryd_stats"], "rx_packets") / nb) }
		if (d > 0 && statf(V[i, "client_line"], "wakeups") > 0) {
			put("a_wake_" w, statf(V[i, "client_line"], "wakeups") / d); x = x ",\"consumer_wakeups_per_datagram\":" jnum(statf(V[i, "client_line"], "wakeups") / d)
		}
		# a client row: ferryd's and the consumer's shares of the own CPU (schedstat), the
		# consumer against recvmmsg_rx, ferryd against its count handler (same repetition)
		if (i in CSCH) {
			put("a_fsch_" w, SCH[i]); put("a_csch_" w, CSCH[i])
			x = x ",\"ferryd_sched_ns_per_pkt\":" jnum(SCH[i]) ",\"consumer_sched_ns_per_pkt\":" jnum(CSCH[i])
			if (SCH[i] + CSCH[i] > 0) put("a_cshare_" w, 100 * CSCH[i] / (SCH[i] + CSCH[i]))
			if (ba && (ba in SCH) && SCH[ba] > 0) {
				put("a_crproc_" w, CSCH[i] / SCH[ba]); x = x ",\"consumer_sched_vs_" B_ "\":" jnum(CSCH[i] / SCH[ba])
			}
			o1 = ia(r, cnt_of(w))
			if (o1 && (o1 in SCH) && SCH[o1] > 0) {
				put("a_hoff_" w, SCH[i] - SCH[o1]); put("a_hoffr_" w, SCH[i] / SCH[o1])
				x = x ",\"ferryd_sched_minus_" cnt_of(w) "_ns\":" jnum(SCH[i] - SCH[o1]) ",\"ferryd_sched_vs_" cnt_of(w) "\":" jnum(SCH[i] / SCH[o1])
			}
		}
		AX[i] = x
	}
	# margins need the floor and baseline of the same repetition first
	for (i = 1; i <= N; i++) {
		if (FIG[i] != "a" || !HAVEM[i]) continue
		r = REP[i]; w = WHO[i]; B_ = base_of(w); ba = ia(r, B_); rx = ia(r, "rxdrop")
		if (ba && HAVEM[ba] && MARGIN[ba] > 0) {
			put("a_rmargin_" w, MARGIN[i] / MARGIN[ba]); AX[i] = AX[i] ",\"margin_vs_" B_ "\":" jnum(MARGIN[i] / MARGIN[ba])
		}
		# busy-polling: ferryd against the bare AF_XDP loop busy-polling too
		if (w == W1 "_bp" && ia(r, "rxdrop_bp") && HAVEM[ia(r, "rxdrop_bp")] && MARGIN[ia(r, "rxdrop_bp")] > 0)
			put("t_xdp_bp", MARGIN[i] / MARGIN[ia(r, "rxdrop_bp")])
		# the targets pair each ferryd mode with its bare counterpart
		if (w == W1 && rx && HAVEM[rx] && MARGIN[rx] > 0)
			put("t_xdp", MARGIN[i] / MARGIN[rx])
		if (w == "ferryd_socket" && ba && HAVEM[ba] && MARGIN[ba] > 0)
			put("t_sock", MARGIN[i] / MARGIN[ba])
		if (w == W1 && rx && PNS[rx] > 0)
			put("t_xdp_own", PNS[i] / PNS[rx])
		# ferryd -> clients (ferryd + consumers) against its count handler, same repetition
		o1 = ia(r, cnt_of(w))
		if ((w in ISCLIENT) && o1 && HAVEM[o1]) {
			if (MARGIN[o1] > 0) put("t_cnt_margin_" w, MARGIN[i] / MARGIN[o1])
			if (PNS[o1] > 0) put("t_cnt_own_" w, PNS[i] / PNS[o1])
		}
		# ferryd with 2 workers against 1 worker, same repetition
		o1 = ia(r, W1)
		if (w == W2 && o1 && HAVEM[o1]) {
			put("w21_busy", NS[i] / NS[o1])
			if (MARGIN[o1] > 0) put("w21_margin", MARGIN[i] / MARGIN[o1])
			if (PNS[o1] > 0) put("w21_own", PNS[i] / PNS[o1])
		}
	}

	# ---- (b) at the ceiling ----
	for (i = 1; i <= N; i++) {
		if (FIG[i] != "b") continue
		s = num(V[i, "sent"]); d = num(V[i, "delivered"]); g = num(V[i, "gen_s"]); w = WHO[i]; z = SIZE[i]; x = ""
		if (g > 0) { BPPS[i] = d / g; put("b_pps_" w "_" z, BPPS[i]); put("b_off_" w "_" z, s / g); x = x ",\"delivered_pps\":" jnum(BPPS[i]) }
		if (s > 0) { put("b_loss_" w "_" z, 100 * (s - d) / s); x = x ",\"loss_pct\":" jnum(100 * (s - d) / s) }
		# drops a counter accounts for: socket buffers, AF_XDP rings (rxdrop's or ferryd's)
		ex = num(V[i, "udp_rcvbuf_errors"]) + num(V[i, "rx_dropped"]) + num(V[i, "rx_ring_full"]) + \
			statf(V[i, "ferryd_stats"], "xsk_rx_dropped") + statf(V[i, "ferryd_stats"], "xsk_rx_ring_full") + \
			statf(V[i, "ferryd_stats"], "rx_client_full") + statf(V[i, "ferryd_stats"], "rx_no_client")
		un = s - d - ex
		put("b_unexpl_" w "_" z, un); x = x ",\"explained_drops\":" ex ",\"unexplained_drops\":" un
		BX[i] = x
	}
	for (i = 1; i <= N; i++) {
		if (FIG[i] != "b" || !(i in BPPS)) continue
		c = ((REP[i], SIZE[i], floor_of(WHO[i])) in IB) ? IB[REP[i], SIZE[i], floor_of(WHO[i])] : 0
		if (c && BPPS[c] > 0) { put("b_ceil_" WHO[i] "_" SIZE[i], 100 * BPPS[i] / BPPS[c]); BX[i] = BX[i] ",\"of_ceiling_pct\":" jnum(100 * BPPS[i] / BPPS[c]) }
	}

	# ---- (c) round trips ----
	for (i = 1; i <= N; i++) {
		if (FIG[i] != "c") continue
		w = WHO[i]; x = ""
		put("c_p50_" w, num(V[i, "p50_us"])); put("c_p99_" w, num(V[i, "p99_us"])); put("c_p999_" w, num(V[i, "p999_us"]))
		put("c_lost_" w, num(V[i, "lost"]))
		ba = ((REP[i], "udpecho") in IC) ? IC[REP[i], "udpecho"] : 0
		if (ba && num(V[ba, "p50_us"]) > 0) {
			put("c_r50_" w, num(V[i, "p50_us"]) / num(V[ba, "p50_us"])); x = ",\"p50_vs_udpecho\":" jnum(num(V[i, "p50_us"]) / num(V[ba, "p50_us"]))
		}
		CX[i] = x
	}

	# ---- (d) instructions ----
	for (i = 1; i <= N; i++) {
		if (FIG[i] != "d") continue
		n = num(V[i, "n"])
		a1 = num(V[i, "ir_" n]); a2 = num(V[i, "ir_" (2 * n)])
		if (n > 0 && a1 > 0 && a2 > 0) IRD[WHO[i]] = (a2 - a1) / n
	}

	# ---- the table ----
	printf "\nferry bench%s: kernel %s, %s x %s, %s XDP on %s, AF_XDP %s mode; generator CPU %s, receiver CPU %s\n",
		V[pa, "quick"] == 1 ? " (quick: checks the harness, not the figures)" : "",
		V[sy, "kernel"], V[sy, "cpus"], V[sy, "cpu_model"], V[sy, "xdp_mode"], V[sy, "interface"], V[sy, "xsk_bind"],
		V[sy, "generator_cpu"], V[sy, "receiver_cpu"]
	if (md != "") {
		printf "ferry bench%s, %s: kernel %s, %s x %s, %s XDP on %s, AF_XDP %s mode; generator CPU %s, receiver CPU %s; " \
			"machine busy before the run: %s%%; %s s\n", V[pa, "quick"] == 1 ? " (quick: checks the harness, not the figures)" : "",
			V[tm, "date"], V[sy, "kernel"], V[sy, "cpus"], V[sy, "cpu_model"], V[sy, "xdp_mode"], V[sy, "interface"],
			V[sy, "xsk_bind"], V[sy, "generator_cpu"], V[sy, "receiver_cpu"], V[sy, "background_busy_pct"], V[tm, "elapsed_s"] > md
		if ("xdpgen" in ICEIL) printf "\nCeiling (xdpgen unpaced into xdp_count, %s-byte payloads): %.0f kpps\n", V[pa, "size_a"], ceilpps(ICEIL["xdpgen"]) / 1e3 > md
	}
	if (("xdpgen" in ICEIL) || ("udpgen" in ICEIL)) {
		printf "ceiling (unpaced, %s-byte payloads, delivered to xdp_count):", V[pa, "size_a"]
		if ("xdpgen" in ICEIL) printf " xdpgen %.0f kpps", ceilpps(ICEIL["xdpgen"]) / 1e3
		if ("udpgen" in ICEIL) printf ", udpgen (sendmmsg) %.0f kpps", ceilpps(ICEIL["udpgen"]) / 1e3
		printf "\n"
	}

	if (NW["a"]) {
		printf "\n(a) CPU per packet at %s pps offered (xdpgen), %s-byte payloads, %s x %s packets; min / median over repetitions\n",
			V[pa, "rate_a"], V[pa, "size_a"], MAXREP["a"], V[pa, "count_a"]
		printf "    busy = machine-wide (user+nice+system+irq+softirq); margin = busy - %s's busy, same repetition;\n", FLOOR
		if (n2)
			printf "    *_2q, *_2w: on a 2-queue veth, one xdpgen per queue at half the rate; margin over %s\n", FLOOR2
		printf "    own = the receiver process's CPU time (schedstat run time, all threads); ratio = to %s in the same repetition\n", BASE
		printf "    ferryd_clients*: ferryd (--handler clients) + ferry-echo --count consumers (4: round-robin), all on the receiver CPU;\n"
		printf "    own = all the processes; *_consumer: the consumers alone (schedstat run time; ratio to %s's)\n", BASE
		printf "    *_bp: busy-polling (ferryd --busy-poll; SO_BUSY_POLL on the baselines); ratios to %s_bp, same repetition\n", BASE
		if (V[sy, "background_busy_pct"] > 10)
			printf "    (the machine was %s%% busy before the run: machine-wide figures are noisy)\n", V[sy, "background_busy_pct"]
		printf "%-26s %8s %15s %15s %13s %13s %13s\n", "receiver", "deliv %", "busy ns/pkt", "margin ns/pkt", "margin ratio", "own ns/pkt", "own ratio"
		if (md != "") {
			printf "\n(a) CPU per packet at %s pps, %s-byte payloads, %s repetitions; min / median; ratios to %s (busy-polling rows: to %s_bp) of the same repetition\n\n",
				V[pa, "rate_a"], V[pa, "size_a"], MAXREP["a"], BASE, BASE > md
			printf "| receiver | delivered %% | busy ns/pkt | margin ns/pkt | margin ratio | own ns/pkt | own ratio |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n" > md
		}
		# the order of the run (param receivers_a, n/a rows included), else of the records
		na_ = split(V[pa, "receivers_a"], AL, " ")
		if (!na_) for (k = 1; k <= NW["a"]; k++) AL[++na_] = WHO_OF["a", k]
		for (k = 1; k <= na_; k++) {
			w = AL[k]
			if (w in NA) { printf "%-26s %s\n", w, "n/a (not built)"; if (md != "") printf "| %s | n/a (not built) | | | | | |\n", w > md; continue }
			printf "%-26s %8s %15s %15s %13s %13s %13s\n", w, fmt(smin("a_dpct_" w), "%.2f"),
				pair("a_ns_" w, "%.0f"), pair("a_margin_" w, "%.0f"), pair("a_rmargin_" w, "%.2f"),
				pair("a_pns_" w, "%.0f"), pair("a_rproc_" w, "%.2f")
			if (md != "")
				printf "| %s | %s | %s | %s | %s | %s | %s |\n", w, fmt(smin("a_dpct_" w), "%.2f"),
					pair("a_ns_" w, "%.0f"), pair("a_margin_" w, "%.0f"), pair("a_rmargin_" w, "%.2f"),
					pair("a_pns_" w, "%.0f"), pair("a_rproc_" w, "%.2f") > md
			if (SN["a_csch_" w])
				printf "%-26s %8s %15s %15s %13s %13s %13s\n", w "_consumer", "", "", "", "",
					pair("a_csch_" w, "%.0f"), pair("a_crproc_" w, "%.2f")
		}
		if (SN["w21_busy"])
			printf "%s / %s, medians of per-repetition ratios: busy %s, margin %s, own %s\n", W2, W1,
				fmt(smed("w21_busy"), "%.2f"), fmt(smed("w21_margin"), "%.2f"), fmt(smed("w21_own"), "%.2f")
		for (k = 1; k <= na_; k++) {
			w = AL[k]
			if (!SN["a_csch_" w]) continue
			printf "%s, own CPU split (schedstat ns/pkt, min / median): ferryd %s, consumer %s (%s%% of the two)\n", w,
				pair("a_fsch_" w, "%.0f"), pair("a_csch_" w, "%.0f"), pair("a_cshare_" w, "%.0f")
			if (SN["a_hoff_" w])
				printf "  ferryd's hand-off: ferryd here - %s (count handler), same repetition: %s ns/pkt, ratio %s\n", cnt_of(w),
					pair("a_hoff_" w, "%+.0f"), pair("a_hoffr_" w, "%.2f")
			if (SN["t_cnt_own_" w])
				printf "  %s / %s, medians of per-repetition ratios: margin %s, own %s\n", w, cnt_of(w),
					fmt(smed("t_cnt_margin_" w), "%.2f"), fmt(smed("t_cnt_own_" w), "%.2f")
		}
		s_ = ""
		for (k = 1; k <= na_; k++) if (SN["a_ppb_" AL[k]]) s_ = s_ sprintf("%s %s, ", AL[k], fmt(smed("a_ppb_" AL[k]), "%.1f"))
		if (s_ != "") printf "ferryd's datagrams per RX batch, median: %s\n", substr(s_, 1, length(s_) - 2)
		s_ = ""
		for (k = 1; k <= na_; k++) if (SN["a_wake_" AL[k]]) s_ = s_ sprintf("%s %s, ", AL[k], fmt(smed("a_wake_" AL[k]), "%.2f"))
		if (s_ != "") printf "consumer wake-ups per datagram (ferryd's client line), median: %s\n", substr(s_, 1, length(s_) - 2)
		for (w in NA) printf "n/a: %s: %s\n", w, NA[w]
		for (k = 1; k <= NW["a"]; k++) {
			w = WHO_OF["a", k]
			if (SN["a_wmin_" w])
				printf "%s: the smallest worker's share of the datagrams, min / median: %.1f%% / %.1f%%\n", w,
					smin("a_wmin_" w), smed("a_wmin_" w)
		}
	}

	if (NW["b"]) {
		printf "\n(b) at the ceiling (xdpgen unpaced, %s s), median over %s repetitions; ceiling = what %s got in the same repetition\n",
			V[pa, "b_s"], MAXREP["b"], FLOOR
		printf "    offered = what the veth took from the generator; loss = offered - delivered; unexplained = lost and\n"
		printf "    not counted by a socket buffer or AF_XDP ring counter (max over repetitions)\n"
		printf "%-18s %6s %13s %15s %11s %9s %9s %12s\n", "receiver", "size", "offered kpps", "delivered kpps", "of ceiling", "loss %", "max loss", "unexplained"
		if (md != "") {
			printf "\n(b) at the ceiling (xdpgen unpaced, %s s), median over %s repetitions; unexplained: max over repetitions\n\n", V[pa, "b_s"], MAXREP["b"] > md
			printf "| receiver | size | offered kpps | delivered kpps | of ceiling | loss %% | max loss %% | unexplained drops |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n" > md
		}
		nsz = split(V[pa, "b_sizes"], SZL, " ")
		for (zz = 1; zz <= nsz; zz++) for (k = 1; k <= NW["b"]; k++) {
			w = WHO_OF["b", k]; z = SZL[zz]
			if (!SN["b_loss_" w "_" z]) continue
			printf "%-18s %6s %13s %15s %10s%% %9s %9s %12s\n", w, z, fmt(smed("b_off_" w "_" z) / 1e3, "%.1f"),
				fmt(smed("b_pps_" w "_" z) / 1e3, "%.1f"), fmt(smed("b_ceil_" w "_" z), "%.1f"),
				fmt(smed("b_loss_" w "_" z), "%.3f"), fmt(smax("b_loss_" w "_" z), "%.3f"), fmt(smax("b_unexpl_" w "_" z), "%d")
			if (md != "")
				printf "| %s | %s | %s | %s | %s%% | %s | %s | %s |\n", w, z, fmt(smed("b_off_" w "_" z) / 1e3, "%.1f"),
					fmt(smed("b_pps_" w "_" z) / 1e3, "%.1f"), fmt(smed("b_ceil_" w "_" z), "%.1f"),
					fmt(smed("b_loss_" w "_" z), "%.3f"), fmt(smax("b_loss_" w "_" z), "%.3f"), fmt(smax("b_unexpl_" w "_" z), "%d") > md
		}
	}

	if (NW["c"]) {
		printf "\n(c) round trip at %s requests/s, %s-byte payloads, %s s each; median over %s repetitions; ratio = to udpecho, same repetition\n",
			V[pa, "c_rate"], V[pa, "size_a"], V[pa, "c_s"], MAXREP["c"]
		printf "%-18s %9s %9s %10s %7s %13s\n", "echo server", "p50 us", "p99 us", "p99.9 us", "lost", "p50 ratio"
		if (md != "") {
			printf "\n(c) round trip at %s requests/s, %s-byte payloads, median over %s repetitions; ratio to udpecho of the same repetition\n\n",
				V[pa, "c_rate"], V[pa, "size_a"], MAXREP["c"] > md
			printf "| echo server | p50 us | p99 us | p99.9 us | lost (max) | p50 ratio |\n| --- | ---: | ---: | ---: | ---: | ---: |\n" > md
		}
		for (k = 1; k <= NW["c"]; k++) {
			w = WHO_OF["c", k]
			printf "%-18s %9s %9s %10s %7s %13s\n", w, fmt(smed("c_p50_" w), "%.1f"), fmt(smed("c_p99_" w), "%.1f"),
				fmt(smed("c_p999_" w), "%.1f"), fmt(smax("c_lost_" w), "%d"), fmt(smed("c_r50_" w), "%.2f")
			if (md != "")
				printf "| %s | %s | %s | %s | %s | %s |\n", w, fmt(smed("c_p50_" w), "%.1f"), fmt(smed("c_p99_" w), "%.1f"),
					fmt(smed("c_p999_" w), "%.1f"), fmt(smax("c_lost_" w), "%d"), fmt(smed("c_r50_" w), "%.2f") > md
		}
	}

	if (NW["d"]) {
		i = ID[WHO_OF["d", 1]]
		printf "\n(d) user-space instructions per datagram (callgrind; (Ir at %d - Ir at %d) / %d queued %s-byte datagrams, batches of 64)\n",
			2 * num(V[i, "n"]), num(V[i, "n"]), num(V[i, "n"]), V[pa, "size_a"]
		printf "%-44s %12s %8s\n", "loop", "Ir/datagram", "x bare"
		for (k = 1; k <= NW["d"]; k++) {
			w = WHO_OF["d", k]
			printf "%-44s %12s %8s\n", dname(w), fmt((w in IRD) ? IRD[w] : "", "%.1f"), vsbare(w)
		}
	}

	printf "\ntargets, medians of per-repetition ratios\n"
	if (md != "") printf "\nTargets, medians of per-repetition ratios (machine-wide ratios are not judged when the machine was busy)\n\n| target | value | limit | status |\n| --- | ---: | --- | --- |\n" > md
	target("ferryd xdp / rxdrop, margin over the floor (machine-wide)", smed("t_xdp"), 1.1, 1, "", 1)
	target("ferryd xdp / rxdrop, own CPU (misses the softirq copy)", smed("t_xdp_own"), 1.1, 1, "", 0)
	target("ferryd socket / recvmmsg_rx, margin over the floor (machine-wide)", smed("t_sock"), 1.1, 1, "", 1)
	target("ferryd socket / recvmmsg_rx, own CPU", smed("a_rproc_ferryd_socket"), 1.1, 1, "", 0)
	target("ferryd xdp delivered at the ceiling, % of offered (worst)", lossmin(W1), 99.9, 0, "", 0)
	target("ferryd xdp 2 workers delivered at the ceiling, % offered (worst)", lossmin(W2), 99.9, 0, "", 0)
	target("ferryd socket delivered at the ceiling, % of offered (worst)", lossmin("ferryd_socket"), 99, 0, "", 0)
	target("ferry_udp_recvmmsg_loop, instructions per datagram", ("ferry" in IRD) ? IRD["ferry"] : "", 40, 1, "", 0)
	target("ferryd -> client / recvmmsg_rx, margin over the floor (machine-wide)", smed("a_rmargin_" WC), 1.0, 1, "", 1)
	target("ferryd -> client / recvmmsg_rx, own CPU (ferryd + consumer)", smed("a_rproc_" WC), 1.0, 1, "", 0)
	target("ferryd -> client / ferryd count handler, margin (machine-wide)", smed("t_cnt_margin_" WC), 1.2, 1, "", 1)
	target("ferryd -> client / ferryd count handler, own (ferryd + consumer)", smed("t_cnt_own_" WC), 1.2, 1, "", 0)
	target("ferryd -> client zero-copy / recvmmsg_rx, margin (machine-wide)", smed("a_rmargin_" WZ), 1.0, 1, "", 1)
	target("ferryd -> client zero-copy / recvmmsg_rx, own (ferryd + consumer)", smed("a_rproc_" WZ), 1.0, 1, "", 0)
	target("ferryd -> client zero-copy / count handler, margin (machine-wide)", smed("t_cnt_margin_" WZ), 1.2, 1, "", 1)
	target("ferryd -> client zero-copy / count handler, own (ferryd + consumer)", smed("t_cnt_own_" WZ), 1.2, 1, "", 0)
	target("ferryd -> 4 clients / recvmmsg_rx, own (ferryd + consumers)", smed("a_rproc_" W4), 1.0, 1, "", 0)
	target("ferryd -> 4 clients / count handler, own (ferryd + consumers)", smed("t_cnt_own_" W4), 1.2, 1, "", 0)
	target("busy-poll: ferryd xdp / rxdrop, margin over the floor (machine-wide)", smed("t_xdp_bp"), 1.1, 1, "", 1)
	target("busy-poll: ferryd -> client / recvmmsg_rx, own (ferryd + consumer)", smed("a_rproc_" WB), 1.0, 1, "", 0)
	target("busy-poll: ferryd -> client / count handler, own (ferryd + consumer)", smed("t_cnt_own_" WB), 1.2, 1, "", 0)
	target("ferryd -> client delivered at the ceiling, % of offered (worst)", lossmin(WC), 99.9, 0, "", 0)
	target("ferryd -> client zero-copy delivered at the ceiling, % offered (worst)", lossmin(WZ), 99.9, 0, "", 0)
	target("ferryd -> 4 clients delivered at the ceiling, % of offered (worst)", lossmin(W4), 99.9, 0, "", 0)
	target("unexplained drops at the ceiling, ferryd xdp and client rows (max)", unexpl(W1 " " W2 " " WC " " WZ " " W4), 0, 1, "", 0)
	target("round trip p50, ferryd + client echo / udpecho", smed("c_r50_ferryd_client_echo"), 1.0, 1, "", 0)
	target("dispatcher + client loop, instructions per datagram",
	       ("dispatcher" in IRD) && ("client_loop" in IRD) ? IRD["dispatcher"] + IRD["client_loop"] : "", 100, 1, "", 0)
	if (md != "") printf "\n" > md
	for (k = 1; k <= NS_; k++) printf "skipped: %s\n", SKIPMSG[k]
	for (k = 1; k <= NF_; k++) printf "FAILED: %s\n", FAILMSG[k]
	printf "elapsed %s s\n", V[tm, "elapsed_s"]

	# ---- the JSON ----
	o = "{\"bench\":\"ferry\",\"format\":1,\"date\":" jstr(V[tm, "date"]) ",\"elapsed_s\":" jval(V[tm, "elapsed_s"])
	o = o ",\"system\":" jrecord_plain(sy) ",\"params\":" jrecord_plain(pa)
	o = o ",\"method\":" jstr("receivers interleaved within each repetition; every ratio within one repetition; min/median over repetitions; busy = machine-wide user+nice+system+irq+softirq from /proc/stat (steal excluded); own = run time of the receiver (and its consumers) from /proc/PID/task/*/schedstat")
	o = o ",\"failures\":["
	for (k = 1; k <= NF_; k++) o = o (k > 1 ? "," : "") jstr(FAILMSG[k])
	o = o "],\"skipped\":["
	for (k = 1; k <= NS_; k++) o = o (k > 1 ? "," : "") jstr(SKIPMSG[k])
	o = o "]"
	print o > json

	printf ",\"sanity\":[" > json; sep = ""
	for (i = 1; i <= N; i++) if (FIG[i] == "sanity") { printf "%s%s", sep, jrecord(i, "") > json; sep = "," }
	printf "]\n" > json

	printf ",\"ceiling\":{" > json; sep = ""
	for (i = 1; i <= N; i++) if (FIG[i] == "ceiling") {
		x = num(V[i, "gen_s"]) > 0 ? ",\"delivered_pps\":" jnum(num(V[i, "delivered"]) / num(V[i, "gen_s"])) : ""
		printf "%s%s:%s", sep, jstr(WHO[i] "_" SIZE[i]), jrecord(i, x) > json; sep = ","
	}
	printf "}\n" > json

	printf ",\"cpu_per_packet\":{\"rate_pps\":%s,\"size\":%s,\"count\":%s,\"generator\":\"xdpgen\",\"floor\":\"%s\",\"baseline\":\"%s\"",
		jval(V[pa, "rate_a"]), jval(V[pa, "size_a"]), jval(V[pa, "count_a"]), FLOOR, BASE > json
	printf ",\"two_queues\":{\"generator\":\"one xdpgen per queue, half the rate each\",\"floor\":%s,\"receivers\":[", jstr(FLOOR2) > json
	for (k = 1; k <= n2; k++) printf "%s%s", (k > 1 ? "," : ""), jstr(L2[k]) > json
	printf "]},\"workers_2_vs_1\":{\"busy\":%s,\"margin\":%s,\"own\":%s},\"receivers\":{",
		jseries("w21_busy"), jseries("w21_margin"), jseries("w21_own") > json
	for (k = 1; k <= NW["a"]; k++) {
		w = WHO_OF["a", k]
		printf "%s%s:{\"busy_ns_per_pkt\":%s,\"margin_ns_per_pkt\":%s,\"margin_vs_%s\":%s,\"busy_vs_%s\":%s,\"proc_ns_per_pkt\":%s,\"proc_vs_%s\":%s,\"delivered_pct\":%s",
			(k > 1 ? "," : ""), jstr(w), jseries("a_ns_" w), jseries("a_margin_" w), base_of(w), jseries("a_rmargin_" w),
			base_of(w), jseries("a_rtot_" w), jseries("a_pns_" w), base_of(w), jseries("a_rproc_" w), jseries("a_dpct_" w) > json
		if (SN["a_csch_" w])
			printf ",\"consumer\":{\"what\":\"ferry-echo --count, same CPU; proc_ns_per_pkt above is ferryd + consumers\",\"ferryd_sched_ns_per_pkt\":%s,\"consumer_sched_ns_per_pkt\":%s,\"consumer_sched_vs_%s\":%s,\"consumer_share_pct\":%s,\"ferryd_sched_minus_%s_ns\":%s,\"ferryd_sched_vs_%s\":%s,\"vs_%s\":{\"margin\":%s,\"own\":%s}}",
				jseries("a_fsch_" w), jseries("a_csch_" w), base_of(w), jseries("a_crproc_" w), jseries("a_cshare_" w),
				cnt_of(w), jseries("a_hoff_" w), cnt_of(w), jseries("a_hoffr_" w), cnt_of(w), jseries("t_cnt_margin_" w), jseries("t_cnt_own_" w) > json
		printf ",\"reps\":[" > json
		sep = ""
		for (r = 1; r <= MAXREP["a"]; r++) if ((r, w) in IA) { i = IA[r, w]; printf "%s%s", sep, jrecord(i, AX[i]) > json; sep = "," }
		printf "]}" > json
	}
	k = NW["a"]
	for (w in NA) printf "%s%s:{\"status\":\"n/a\",\"why\":%s}", (k++ > 0 ? "," : ""), jstr(w), jstr(NA[w]) > json
	printf "}}\n" > json

	printf ",\"ceiling_loss\":{\"generator\":\"xdpgen unpaced\",\"duration_s\":%s,\"receivers\":{", jval(V[pa, "b_s"]) > json
	for (k = 1; k <= NW["b"]; k++) {
		w = WHO_OF["b", k]
		printf "%s%s:{", (k > 1 ? "," : ""), jstr(w) > json
		for (zz = 1; zz <= nsz; zz++) {
			z = SZL[zz]
			printf "%s\"%s\":{\"offered_pps\":%s,\"delivered_pps\":%s,\"of_ceiling_pct\":%s,\"loss_pct\":%s,\"unexplained_drops\":%s,\"reps\":[",
				(zz > 1 ? "," : ""), z, jseries("b_off_" w "_" z), jseries("b_pps_" w "_" z), jseries("b_ceil_" w "_" z),
				jseries("b_loss_" w "_" z), jseries("b_unexpl_" w "_" z) > json
			sep = ""
			for (r = 1; r <= MAXREP["b"]; r++) if ((r, z, w) in IB) { i = IB[r, z, w]; printf "%s%s", sep, jrecord(i, BX[i]) > json; sep = "," }
			printf "]}" > json
		}
		printf "}" > json
	}
	printf "}}\n" > json

	printf ",\"round_trip\":{\"rate\":%s,\"size\":%s,\"duration_s\":%s,\"baseline\":\"udpecho\",\"servers\":{", jval(V[pa, "c_rate"]), jval(V[pa, "size_a"]), jval(V[pa, "c_s"]) > json
	for (k = 1; k <= NW["c"]; k++) {
		w = WHO_OF["c", k]
		printf "%s%s:{\"p50_us\":%s,\"p99_us\":%s,\"p999_us\":%s,\"p50_vs_udpecho\":%s,\"reps\":[", (k > 1 ? "," : ""), jstr(w),
			jseries("c_p50_" w), jseries("c_p99_" w), jseries("c_p999_" w), jseries("c_r50_" w) > json
		sep = ""
		for (r = 1; r <= MAXREP["c"]; r++) if ((r, w) in IC) { i = IC[r, w]; printf "%s%s", sep, jrecord(i, CX[i]) > json; sep = "," }
		printf "]}" > json
	}
	printf "}}\n" > json

	printf ",\"instructions\":{\"tool\":\"callgrind\",\"loops\":{" > json
	for (k = 1; k <= NW["d"]; k++) {
		w = WHO_OF["d", k]; i = ID[w]
		printf "%s%s:%s", (k > 1 ? "," : ""), jstr(w), jrecord(i, ",\"what\":" jstr(dname(w)) ",\"ir_per_datagram\":" jnum((w in IRD) ? IRD[w] : "")) > json
	}
	printf "},\"pending\":[]}\n" > json

	printf ",\"targets\":[" > json
	for (k = 1; k <= NT; k++) printf "%s%s", (k > 1 ? "," : ""), TJ[k] > json
	printf "]}\n" > json
	close(json)
}

function pair(name, f) { return SN[name] ? sprintf(f " / " f, smin(name), smed(name)) : "-" }
# A counter from a ferryd stats line ("... key=value ..."), 0 if absent.
function statf(line, key,   n, i, f) {
	n = split(line, f, " ")
	for (i = 1; i <= n; i++) if (index(f[i], key "=") == 1) return num(substr(f[i], length(key) + 2))
	return 0
}
# The baseline and ferryd's count handler a row is compared with: busy-polling rows
# (*_bp) with the busy-polling ones.
function base_of(w) { return w ~ /_bp$/ ? BASE "_bp" : BASE }
function cnt_of(w) { return w ~ /_bp$/ ? W1 "_bp" : W1 }
function ia(r, w) { return ((r, w) in IA) ? IA[r, w] : 0 }
function floor_of(w) { return (w in TWOQ) && FLOOR2 != "" ? FLOOR2 : FLOOR }
function ceilpps(i) { return num(V[i, "gen_s"]) > 0 ? num(V[i, "delivered"]) / num(V[i, "gen_s"]) : 0 }
function vsbare(w) { return ("bare" in IRD) && IRD["bare"] > 0 && (w in IRD) ? sprintf("%.2f", IRD[w] / IRD["bare"]) : "-" }
function dname(w) {
	if (w == "ferry") return "ferry_udp_recvmmsg_loop (srcs on, 64)"
	if (w == "ferry-nosrc") return "ferry_udp_recvmmsg_no_sources_loop (64)"
	if (w == "bare") return "bare recvmmsg(64) + counting callback"
	if (w == "afxdp_rx") return "ferryd AF_XDP RX path (64, count handler)"
	if (w == "dispatcher") return "ferryd dispatcher -> 1 client, copy (64)"
	if (w == "client_loop") return "ferry_client_recvmmsg_loop (64)"
	return w
}
# The worst delivered share at the ceiling over sizes and repetitions, in %.
function lossmin(w,   zz, z, m, v) {
	m = ""
	for (zz = 1; zz <= nsz; zz++) {
		z = SZL[zz]; v = smax("b_loss_" w "_" z)
		if (v != "" && (m == "" || 100 - v < m)) m = 100 - v
	}
	return m
}
# The most drops no counter explains over receivers, sizes and repetitions.
function unexpl(ws,   n, L, k, zz, v, m) {
	n = split(ws, L, " "); m = ""
	for (k = 1; k <= n; k++) for (zz = 1; zz <= nsz; zz++) {
		v = smax("b_unexpl_" L[k] "_" SZL[zz])
		if (v != "" && (m == "" || v > m)) m = v
	}
	return m
}
function jrecord_plain(i,   k, s) {
	if (!i) return "{}"
	s = "{"
	for (k = 1; k <= NK[i]; k++) s = s (k > 1 ? "," : "") jstr(KEY[i, k]) ":" jval(V[i, KEY[i, k]])
	return s "}"
}
