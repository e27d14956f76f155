/* desktop: the persona-desktop client service. It holds a WebSocket to personad's event stream
 * (/v1/ws) with a desktop device token, speaks each answer with the speech module (on the
 * default audio output, or as one WAV file per answer), acks the events it has handled and
 * persists the last handled seq, so a restart or a network drop loses no answer and speaks none
 * twice. The program (apps/persona-desktop) is a thin main over desk_main().
 *
 * Threads: the libwebsockets service loop runs on the calling thread and never blocks;
 * synthesis, playback, WAV writes and state-file fsyncs run on one worker thread. */
#ifndef PERSONA_DESKTOP_H
#define PERSONA_DESKTOP_H

enum { DESK_EXIT_OK = 0, DESK_EXIT_FAIL = 1, DESK_EXIT_USAGE = 2 };

/* Runs persona-desktop with its command line (see `persona-desktop --help`). Returns the exit
 * status: DESK_EXIT_OK (stopped by SIGINT/SIGTERM, or --once after its answer),
 * DESK_EXIT_USAGE for a bad command line or config file, DESK_EXIT_FAIL otherwise (the token
 * was refused, the state file cannot be written). */
int desk_main(int argc, char **argv);

#endif
