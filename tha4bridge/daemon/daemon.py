"""`tha4bridge serve`: poses in (trackers, control socket), RGBA frames out (shm ring + ZeroMQ, or inline).

The daemon only composes parts, each with one job, along the data path:
  TrackerHub (trackers/)      UDP packets → the tracked pose; wakes the scheduler after every publish
  Animator (animator.py)      breathing, blinks, sway: the one clock of time-driven motion
  StreamRegistry (streams.py) the running streams, their control holds, the shared models
  FramePoses (framepose.py)   a frame's pose from its sources (tracker, hold, idle), layers, breathing, clamp
  RenderScheduler (scheduler.py)  which stream is due → its frame pose → render → the frame sink
  BodyWorker (bodyworker.py)  two rates: body passes ahead on their own thread; bodytrack.py estimates from them
  FrameSink (transport/sink.py)   rings, the ZeroMQ publisher and the frame header
  Services (services.py)      what commands may do to the streams and trackers, in one typed interface
  ControlServer + commands.py     the control socket → a table of small command functions over the services
  WebServer (web/, with --http)   pages, the frame WebSocket (a sink listener) and JSON → the same `dispatch`,
                              handed to it here (web/ imports nothing from daemon/)

Threads:
- main: the control socket (ControlServer.poll → commands.dispatch) and signals; a reply never waits for a
  render or a model load.
- render: RenderScheduler.run, the only thread that renders and writes to the sink (rings, publisher).
- body: BodyWorker.run, the body passes of two-rate streams (students in fast mode), one torch thread at the
  lowest priority; it only adds keys to a stream's BodyTrack (its own lock, a leaf).
- tracker receivers (the hub's, one per UDP port): parse and map packets, publish them into the hub, and
  call the scheduler's listener, which marks streams as having a new pose and wakes the render thread.
- loader: one per `load` command, so a slow model load never stalls other streams or clients.
- web (with --http): the aiohttp event loop; its JSON commands run on one "web-commands" thread through the
  same `dispatch` (they take the registry lock like the main thread's), compressed frames on "web-encoder".

Locks: one lock, `StreamRegistry.lock`, guards the streams, their control holds and scheduling flags, the
model cache, the loads in flight and the streams waiting to close. Nobody holds it during a render, a model
load, a control reply or a hub read (the hub's own lock is released before it calls listeners, and every
reader takes the tracked pose before taking this lock). The sink's small lock, taken under it when a stream
opens, is a leaf: nothing is taken under the sink's.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import signal
import threading
import time

import zmq

from ..defaults import DEMO
from ..animator import Animator, MotionConfig
from ..expressions import load_library
from ..transport.control import ControlServer, RequestError
from ..transport.ring import check_ring_dir
from ..transport.stale import reclaim_stale
from ..transport.sink import FrameSink
from ..web import DaemonLink, parse_http
from .banner import banner
from .commands import COMMANDS, dispatch
from .config import DaemonConfig
from .bodyworker import BodyWorker
from .framepose import FramePoses
from .scheduler import Pacing, RenderScheduler
from .services import Identity, Services, Streams, Trackers
from .streams import StreamRegistry, default_stream_name

log = logging.getLogger("tha4bridge.serve")


def set_threads(threads: int | None, students: bool) -> None:
    """torch's CPU threads: `threads`, else every core when a student is served, else half of them.

    Measured on a 2-core AMD EPYC (Zen 1): a student frame took 757 ms with 2 threads and 1357 ms with 1; with
    one other busy process 1392 against 2128 ms, with two 1761 against 2397 (its GEMMs are large enough that
    every thread's share is worth the wait). The demo's many small operations are the opposite: 151 ms with 1
    thread, 3.2 s with 2 while other processes ran (OpenMP workers spin-waiting), so for it half the cores,
    the other half left to the game and OBS."""
    import torch

    cores = os.cpu_count() or 2
    n = threads or (cores if students else max(1, cores // 2))
    torch.set_num_threads(n)
    log.info("torch CPU threads: %d", n)


def _tracker_hub(c: DaemonConfig):
    """The animator (one clock) and, when tracker input is on, the hub that shares it (not started yet)."""
    if not c.trackers:
        motion = MotionConfig()
        return Animator(dataclasses.replace(motion, breathing_rate=c.breathing_rate(motion.breathing_rate))), None
    from ..trackers import TrackerConfig, TrackerHub

    # /tha4/ parameter messages share the VMC port.
    cfg = TrackerConfig(vmc_port=c.vmc_port, ifm_port=c.ifm_port, ifm_phone=c.ifm_phone, osc_param_port=c.vmc_port,
                        host=c.tracker_host, mapping_file=c.mapping_file, calibration_file=c.calibration_file,
                        webcam=c.webcam)
    idle = cfg.settings().idle  # the [idle] section of the user's settings file
    animator = Animator(dataclasses.replace(idle, breathing_rate=c.breathing_rate(idle.breathing_rate)))
    return animator, TrackerHub(cfg, animator=animator)


class Daemon:
    def __init__(self, config: DaemonConfig):
        config.check()
        self.config = config
        self.osc_refused = 0  # OSC layer requests (/tha4/expression …) the command table refused
        self.expressions = load_library(config.expressions)  # a bad file: ValueError, one line, at start-up
        self.stop_event = threading.Event()
        self.started = time.time()
        self.ctx = zmq.Context()
        self.lock = threading.Lock()
        self.sink: FrameSink | None = None
        self.control: ControlServer | None = None
        self.registry: StreamRegistry | None = None
        self.scheduler: RenderScheduler | None = None
        self.bodies: BodyWorker | None = None
        self.services: Services | None = None
        self.hub = None
        self.web = None
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        c = self.config
        set_threads(c.threads, students=any(spec != DEMO for _, spec in c.students))
        if c.transport == "shm":
            check_ring_dir()
            for path in reclaim_stale():
                log.info("reclaimed stale ring file %s (its daemon is gone)", path)
        self.sink = FrameSink(c.frames, c.transport, c.slots, self.ctx)
        self.control = ControlServer(c.control, self.ctx)
        self.registry = StreamRegistry(self.sink, c.device, c.mode, self.lock, c.backend, c.providers)
        animator, self.hub = _tracker_hub(c)
        poses = FramePoses(animator, self.hub)
        self.scheduler = RenderScheduler(self.registry, self.sink, poses, Pacing(c.fps, c.idle_fps))
        self.bodies = BodyWorker(self.registry.all, lambda s, t: poses.predict(s, t, self.lock))
        streams = Streams(self.registry, self.sink, poses, self.scheduler.wake.set, c.alpha, c.region_of)
        self.services = Services(streams, Trackers(self.hub), self.expressions,
                                 Identity(self.control.endpoint, self.sink.endpoint, c.transport, self.started),
                                 self._counters, self.stop_event.set)
        for name, spec in c.students:
            name = name or default_stream_name(spec)
            streams.open(name, spec, c.stream_alpha.get(name, c.alpha), c.region_of(name))
        if self.hub is not None:
            self.hub.add_listener(self._osc_requests)
            self.hub.add_listener(self.scheduler.on_tracked)
            self.hub.start()
        self._spawn(lambda: self.scheduler.run(self.stop_event), "render")
        self._spawn(lambda: self.bodies.run(self.stop_event), "body")  # two-rate streams' body passes
        if c.http is not None:
            from ..web.server import WebConfig, WebServer

            host, port = parse_http(c.http)
            link = DaemonLink(dispatch=lambda body, reply: dispatch(self.services, body, reply),
                              commands=tuple(sorted(COMMANDS)), find=streams.find, names=streams.names,
                              listeners=self.sink.listeners, wake=self.scheduler.wake.set)
            self.web = WebServer(link, WebConfig(host, port, allow_load=c.http_allow_load, ort_web=c.ort_web))
            self.web.start()
        print(banner(self.control.endpoint, self.sink.endpoint, c.transport, self.registry.infos(),
                     dict(self.hub.ports) if self.hub is not None else None), flush=True)
        if self.web is not None:
            print("\n".join(self.web.urls()), flush=True)

    def _counters(self) -> dict:
        """The control socket's and the publisher's counters, for `stats`."""
        c = self.control
        return {"control": {"requests": c.requests, "errors": c.errors, "too_large": c.too_large,
                            "osc_refused": self.osc_refused},
                "publisher": self.sink.stats()}

    def _spawn(self, target, name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def serve_forever(self) -> None:
        """Answer the control socket until `stop_event` (set by signals, `shutdown`), then clean up."""
        try:
            while not self.stop_event.is_set():
                self.control.poll(self.handle, timeout_ms=100)
        finally:
            self.close()

    def handle(self, request):
        """A control-socket request: the command table, with deferred replies queued on this socket."""
        return dispatch(self.services, request.body, lambda reply: self.control.reply_later(request, reply))

    def _osc_requests(self) -> None:
        """Hub listener (a receiver thread): run the control requests OSC mirrors (/tha4/expression, /tha4/talk,
        /tha4/mouth) through the one command table; a refusal is logged and counted, never fatal."""
        for body in self.hub.take_requests():
            try:
                dispatch(self.services, body, lambda reply: None)  # OSC has no way back
            except RequestError as e:
                self.osc_refused += 1
                log.info("OSC %s refused: %s", body.get("cmd"), e)

    def install_signal_handlers(self) -> None:
        """SIGINT/SIGTERM stop the daemon cleanly; during start-up (loading models) they abort it, and
        `serve` removes the ring files created so far."""
        def on_signal(signum, _frame):
            log.info("received %s, shutting down", signal.Signals(signum).name)
            self.stop_event.set()
            if not self._threads:  # still starting: unwind out of the model load
                raise KeyboardInterrupt

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(sig, on_signal)
            except (ValueError, OSError):  # not the main thread / platform without it
                pass

    def close(self) -> None:
        self.stop_event.set()
        if self.scheduler is not None:
            self.scheduler.wake.set()
        for t in self._threads:
            t.join(timeout=10.0)
        if self.web is not None:
            self.web.stop()
        if self.hub is not None:
            try:
                self.hub.stop()
            except Exception as e:
                log.info("tracker hub stop failed: %s", e)
        if self.control is not None:
            self.control.poll(self.handle, timeout_ms=0)  # flush deferred replies (e.g. shutdown)
            self.control.close()
        if self.registry is not None:
            self.registry.close()  # under the lock: a load finishing now can no longer open a ring
        if self.sink is not None:
            self.sink.close()  # the publisher and every ring file
        self.ctx.destroy(linger=0)  # also closes a socket whose bind failed half-way
        log.info("stopped; ring files removed")


def serve(config: DaemonConfig) -> int:
    """Run the daemon until SIGINT/SIGTERM or `shutdown`; returns an exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        daemon = Daemon(config)
    except ValueError as e:  # a bad option: one line, no traceback
        log.error("%s", e)
        return 2
    daemon.install_signal_handlers()
    try:
        daemon.start()
    except zmq.ZMQError as e:
        log.error("cannot bind a socket: %s (is another daemon running on these ports?)", e)
        daemon.close()
        return 2
    except (RequestError, ValueError, OSError) as e:
        log.error("%s", e)
        daemon.close()
        return 2
    except KeyboardInterrupt:
        daemon.close()
        return 0
    daemon.serve_forever()
    return 0
