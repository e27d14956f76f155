/* asr/format.c: transcripts as WebVTT and SRT subtitles, one cue per segment. Any thread. */
#include <inttypes.h>

#include "asr/asr.h"

static void fmt_time(core_buf_t *b, int64_t ms, char frac_sep)
{
    if (ms < 0)
        ms = 0;
    core_buf_printf(b, "%02" PRId64 ":%02" PRId64 ":%02" PRId64 "%c%03" PRId64, ms / 3600000,
                    ms / 60000 % 60, ms / 1000 % 60, frac_sep, ms % 1000);
}

/* Cue text must not contain a blank line (it would end the cue) nor, in VTT, "-->". Our text is
 * words joined by single spaces, so only newlines need flattening; done anyway for safety. */
static void fmt_text(core_buf_t *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '\n' || *s == '\r')
            core_buf_puts(b, " ");
        else if (s[0] == '-' && s[1] == '-' && s[2] == '>') {
            core_buf_puts(b, "--&gt;");
            s += 2;
        } else
            core_buf_append(b, s, 1);
    }
}

void asr_format_vtt(const asr_transcript_t *t, core_buf_t *b)
{
    core_buf_puts(b, "WEBVTT\n");
    for (size_t i = 0; t && i < t->n_segments; i++) {
        const asr_segment_t *s = &t->segments[i];
        core_buf_puts(b, "\n");
        fmt_time(b, s->start_ms, '.');
        core_buf_puts(b, " --> ");
        fmt_time(b, s->end_ms, '.');
        core_buf_puts(b, "\n");
        fmt_text(b, s->text);
        core_buf_puts(b, "\n");
    }
}

void asr_format_srt(const asr_transcript_t *t, core_buf_t *b)
{
    for (size_t i = 0; t && i < t->n_segments; i++) {
        const asr_segment_t *s = &t->segments[i];
        if (i)
            core_buf_puts(b, "\n");
        core_buf_printf(b, "%zu\n", i + 1);
        fmt_time(b, s->start_ms, ',');
        core_buf_puts(b, " --> ");
        fmt_time(b, s->end_ms, ',');
        core_buf_puts(b, "\n");
        fmt_text(b, s->text);
        core_buf_puts(b, "\n");
    }
}
