/* media/probe.c: what an input is — container, duration, streams, codecs, picture size, frame
 * rate, sample rate — and whether that matches the kind an upload declared; the probe as JSON for
 * the API's "probe" object (docs/api.md). Also media_init. Reentrant; runs on worker threads. */
#include "media/internal.h"

#include <libavutil/log.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void media_init(void)
{
    av_log_set_level(AV_LOG_QUIET);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

int media_probe_file(const char *path, media_probe_t *out, char *err, size_t errcap)
{
    AVFormatContext *fmt = NULL;
    int video = -1, audio = -1;
    int ret;

    memset(out, 0, sizeof *out);
    out->duration = -1;
    ret = media__open_input(path, &fmt, err, errcap);
    if (ret < 0)
        goto out;

    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        const AVStream *st = fmt->streams[i];
        const AVCodecParameters *par = st->codecpar;
        /* A stream we could not decode does not count: it would fail every later step. */
        if (par->codec_id == AV_CODEC_ID_NONE || !avcodec_find_decoder(par->codec_id))
            continue;
        if (par->codec_type == AVMEDIA_TYPE_VIDEO && par->width > 0 && par->height > 0) {
            /* Cover art is a picture attached to audio, not a video track. */
            if (media__is_real_video(st) && video < 0)
                video = (int)i;
        } else if (par->codec_type == AVMEDIA_TYPE_AUDIO && audio < 0 && par->sample_rate > 0) {
            audio = (int)i;
        }
    }
    if (video < 0 && audio < 0) {
        ret = media__fail(err, errcap, CORE_EBADMEDIA,
                          media__is_image_format(fmt->iformat)
                              ? "not a recognised media file (the picture cannot be decoded)"
                              : "not a recognised media file (no audio or video stream that "
                                "can be decoded)");
        goto out;
    }

    copy_str(out->container, sizeof out->container, fmt->iformat->name);
    copy_str(out->container_long, sizeof out->container_long, fmt->iformat->long_name);
    out->n_streams = (int)fmt->nb_streams;
    out->bit_rate = fmt->bit_rate > 0 ? fmt->bit_rate : 0;
    out->is_image = video >= 0 && audio < 0 && media__is_image_format(fmt->iformat);
    if (!out->is_image) {
        if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0) {
            out->duration = (double)fmt->duration / AV_TIME_BASE;
        } else {
            /* Some containers give only per-stream durations. */
            for (unsigned i = 0; i < fmt->nb_streams; i++) {
                const AVStream *st = fmt->streams[i];
                double d = media__seconds(st->duration, st->time_base);
                if (d > out->duration)
                    out->duration = d;
            }
        }
    }
    if (video >= 0) {
        const AVStream *st = fmt->streams[video];
        AVRational fr = st->avg_frame_rate.den ? st->avg_frame_rate : st->r_frame_rate;
        out->has_video = true;
        copy_str(out->video_codec, sizeof out->video_codec, avcodec_get_name(st->codecpar->codec_id));
        out->width = st->codecpar->width;
        out->height = st->codecpar->height;
        out->fps = (!out->is_image && fr.den && fr.num > 0) ? av_q2d(fr) : 0;
    }
    if (audio >= 0) {
        const AVStream *st = fmt->streams[audio];
        out->has_audio = true;
        copy_str(out->audio_codec, sizeof out->audio_codec, avcodec_get_name(st->codecpar->codec_id));
        out->sample_rate = st->codecpar->sample_rate;
        out->channels = st->codecpar->ch_layout.nb_channels;
    }
    ret = 0;
out:
    avformat_close_input(&fmt);
    if (ret < 0) {
        memset(out, 0, sizeof *out);
        out->duration = -1;
    }
    return ret;
}

static const char *describe(const media_probe_t *p)
{
    if (p->is_image)
        return "a still image";
    if (p->has_video)
        return p->has_audio ? "a video with sound" : "a video";
    if (p->has_audio)
        return "audio";
    return "not media";
}

int media_probe_check_kind(const media_probe_t *p, const char *kind, char *err, size_t errcap)
{
    if (!kind)
        kind = "";
    if (strcmp(kind, "video") == 0) {
        if (p->has_video && !p->is_image)
            return 0;
    } else if (strcmp(kind, "audio") == 0) {
        if (p->has_audio && !p->has_video)
            return 0;
    } else if (strcmp(kind, "image") == 0) {
        if (p->is_image)
            return 0;
    } else {
        return media__fail(err, errcap, CORE_EBADMEDIA, "'%s' is not a media kind (video, audio "
                                                        "or image)", kind);
    }
    return media__fail(err, errcap, CORE_EBADMEDIA, "expected %s %s, but the file is %s",
                       strcmp(kind, "audio") == 0 ? "an" : "a",
                       strcmp(kind, "audio") == 0 ? "audio recording" : kind, describe(p));
}

/* ---- JSON ---- */

static void json_str(core_buf_t *b, const char *s)
{
    core_buf_puts(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '"': core_buf_puts(b, "\\\""); break;
        case '\\': core_buf_puts(b, "\\\\"); break;
        case '\n': core_buf_puts(b, "\\n"); break;
        case '\r': core_buf_puts(b, "\\r"); break;
        case '\t': core_buf_puts(b, "\\t"); break;
        default:
            /* Names come from FFmpeg's tables (ASCII); anything else non-printable is escaped,
             * and bytes >= 0x80 that are not UTF-8 cannot appear there. */
            if (*c < 0x20 || *c == 0x7f)
                core_buf_printf(b, "\\u%04x", *c);
            else
                core_buf_append(b, c, 1);
        }
    }
    core_buf_puts(b, "\"");
}

static void json_num(core_buf_t *b, double v)
{
    if (!isfinite(v))
        core_buf_puts(b, "null");
    else
        core_buf_printf(b, "%.10g", v);
}

char *media_probe_to_json(const media_probe_t *p)
{
    core_buf_t b;
    core_buf_init(&b);
    core_buf_puts(&b, "{\"container\":");
    json_str(&b, p->container);
    core_buf_puts(&b, ",\"duration\":");
    if (p->duration < 0)
        core_buf_puts(&b, "null");
    else
        json_num(&b, p->duration);
    core_buf_printf(&b, ",\"bit_rate\":%lld,\"streams\":%d", (long long)p->bit_rate, p->n_streams);
    if (p->has_video) {
        core_buf_puts(&b, ",\"video\":{\"codec\":");
        json_str(&b, p->video_codec);
        core_buf_printf(&b, ",\"width\":%d,\"height\":%d,\"fps\":", p->width, p->height);
        json_num(&b, p->fps);
        core_buf_puts(&b, "}");
    }
    if (p->has_audio) {
        core_buf_puts(&b, ",\"audio\":{\"codec\":");
        json_str(&b, p->audio_codec);
        core_buf_printf(&b, ",\"sample_rate\":%d,\"channels\":%d}", p->sample_rate, p->channels);
    }
    core_buf_printf(&b, ",\"image\":%s}", p->is_image ? "true" : "false");
    return core_buf_steal(&b);
}
