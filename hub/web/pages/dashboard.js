// StepHub dashboard: what the clinic, bay and patient pages share. Data comes
// from the hub's JSON API (protobuf's JSON mapping of the gRPC messages:
// lowerCamelCase fields, 64-bit integers as strings) and, live, from the
// Server-Sent Events stream /api/events (one ClinicEvent per message).
"use strict";

const StepHub = (() => {
  function signIn() {
    location.assign("/login?next=" +
                    encodeURIComponent(location.pathname + location.search));
  }

  // Who is signed in, and the CSRF token every POST must carry; asked once.
  let sessionPromise = null;
  function session() {
    if (!sessionPromise) {
      sessionPromise = fetch("/api/session").then(async (response) => {
        if (response.status === 401) { signIn(); throw new Error("not signed in"); }
        if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
        return response.json();
      });
      sessionPromise.then(showWho, () => {});
    }
    return sessionPromise;
  }

  async function api(path, body) {
    let init = {};
    if (body !== undefined) {
      const {csrfToken} = await session();
      init = {method: "POST", body: JSON.stringify(body),
              headers: {"Content-Type": "application/json", "X-CSRF-Token": csrfToken}};
    }
    const response = await fetch(path, init);
    const data = await response.json().catch(() => ({}));
    if (response.status === 401) signIn();
    if (!response.ok) {
      throw new Error(data.message || `${response.status} ${response.statusText}`);
    }
    return data;
  }

  // The signed-in person and a sign-out button, in the page's header.
  function showWho({user}) {
    const header = document.querySelector("header");
    if (!header || document.getElementById("who")) return;
    const out = el("button", {type: "button", onclick: async () => {
      await api("/api/logout", {}).catch(() => {});
      signIn();
    }}, "Sign out");
    header.append(el("span", {id: "who", class: "who"},
                     user.displayName || user.username, out));
  }

  // Calls onEvent(ClinicEvent) for each live event; the first is always a
  // snapshot (again after a reconnect or a miss).
  function live(onEvent, onState) {
    session().catch(() => {});
    const source = new EventSource("/api/events");
    source.addEventListener("clinic", (m) => onEvent(JSON.parse(m.data)));
    source.addEventListener("error", (m) => {
      // The hub's own error event (an expired session, say): data is JSON.
      if (m.data) { sessionPromise = null; session().catch(() => {}); }
    });
    source.onopen = () => onState && onState(true);
    source.onerror = () => onState && onState(false);
    return source;
  }

  const VERDICTS = {
    VERDICT_CLEAN: ["clean", "verdict-clean"],
    VERDICT_PELVIC_DROP: ["pelvic drop", "verdict-drop"],
    VERDICT_PELVIC_HIKE: ["pelvic hike", "verdict-hike"],
    VERDICT_NOT_ASSESSED: ["pelvis not assessed", "verdict-na"],
  };
  function verdictText(v) { return (VERDICTS[v] || ["?", "verdict-na"])[0]; }
  function verdictClass(v) { return (VERDICTS[v] || ["?", "verdict-na"])[1]; }
  function deg(x) { return `${Number(x || 0).toFixed(1)}°`; }
  function side(s) {
    return s === "STANCE_SIDE_LEFT" ? "left" : s === "STANCE_SIDE_RIGHT" ? "right" : "?";
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c !== null && c !== undefined) node.append(c);
    }
    return node;
  }

  // The clinic's state, kept from the live events.
  class Clinic {
    constructor() { this.reset({}); }
    reset(snapshot) {
      this.stations = new Map();
      this.sets = new Map();   // station id -> active ExerciseSet
      this.reps = new Map();   // set id -> [Repetition]
      this.traces = new Map(); // station id -> {t: [], y: []}
      for (const s of snapshot.stations || []) this.stations.set(s.stationId, s);
      for (const set of snapshot.activeSets || []) {
        this.sets.set(set.stationId, set);
        this.reps.set(set.setId, []);
      }
      for (const r of snapshot.repetitions || []) this.addRep(r);
      for (const t of snapshot.traces || []) this.addTrace(t);
    }
    addRep(r) {
      if (!this.reps.has(r.setId)) this.reps.set(r.setId, []);
      const list = this.reps.get(r.setId);
      if (!list.some((x) => x.number === r.number)) list.push(r);
    }
    addTrace(t) {
      let trace = this.traces.get(t.stationId);
      if (!trace || trace.setId !== t.setId) {
        trace = {setId: t.setId, t: [], y: []};
        this.traces.set(t.stationId, trace);
      }
      for (let i = 0; i < (t.tUs || []).length; i++) {
        trace.t.push(Number(t.tUs[i]) / 1e6);
        trace.y.push(t.pelvicDropDeg[i]);
      }
      // The last 10 s.
      const newest = trace.t[trace.t.length - 1];
      while (trace.t.length && trace.t[0] < newest - 10) {
        trace.t.shift();
        trace.y.shift();
      }
    }
    apply(e) {
      if (e.snapshot) this.reset(e.snapshot);
      else if (e.station) this.stations.set(e.station.stationId, e.station);
      else if (e.setStarted) {
        this.sets.set(e.setStarted.stationId, e.setStarted);
        this.reps.set(e.setStarted.setId, []);
        this.traces.delete(e.setStarted.stationId);
      } else if (e.setEnded) {
        const current = this.sets.get(e.setEnded.stationId);
        if (current && current.setId === e.setEnded.setId) {
          this.sets.set(e.setEnded.stationId, e.setEnded);
        }
      } else if (e.repetition) this.addRep(e.repetition);
      else if (e.pelvisTrace) this.addTrace(e.pelvisTrace);
    }
    // Why a bay needs a look now; empty when it does not.
    alerts(stationId) {
      const out = [];
      const station = this.stations.get(stationId);
      if (station && !station.online) out.push("station offline");
      for (const h of (station && station.sensorHealth) || []) {
        if (h.state !== "SENSOR_STATE_OK" && h.state !== "SENSOR_STATE_UNSPECIFIED") {
          out.push(`sensor ${h.sensorId}: ${h.detail || h.state}`);
        }
      }
      const set = this.sets.get(stationId);
      const reps = set ? this.reps.get(set.setId) || [] : [];
      let run = 0;
      for (let i = reps.length - 1; i >= 0 && reps[i].verdict === "VERDICT_PELVIC_DROP"; i--) run++;
      if (run >= 2) out.push(`pelvis dropping: ${run} reps in a row`);
      return out;
    }
  }

  // A small live chart of pelvic drop over the last seconds.
  function traceChart(container, height) {
    const plot = new uPlot({
      width: Math.max(container.clientWidth, 200), height,
      legend: {show: false}, cursor: {show: false},
      scales: {x: {time: false}, y: {range: (u, min, max) => [Math.min(-2, min), Math.max(10, max)]}},
      axes: [{show: false}, {size: 36}],
      series: [{}, {stroke: "#c62828", width: 2}],
    }, [[], []], container);
    return {
      set(trace) {
        if (!trace || !trace.t.length) { plot.setData([[], []]); return; }
        plot.setData([trace.t, trace.y]);
        container.dataset.points = String(trace.t.length);
      },
    };
  }

  return {api, live, session, verdictText, verdictClass, deg, side, el, Clinic,
          traceChart};
})();
