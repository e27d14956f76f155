/* media/internal.h: what the media module's own files share — opening an input safely (demuxer
 * and protocol whitelists, probe bounds, the picture-size bound), opening a decoder, and turning
 * FFmpeg's error codes into ours with a message. Nothing outside src/media includes this. */
#ifndef PERSONA_MEDIA_INTERNAL_H
#define PERSONA_MEDIA_INTERNAL_H

#include "core/core.h"
#include "media/media.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>

/* How much of an input libavformat may read, and how far into it, to learn its streams. */
#define MEDIA__PROBESIZE (20 * 1024 * 1024)
#define MEDIA__ANALYZE_US (10 * (int64_t)AV_TIME_BASE)

/* Writes a message into err (if err and errcap) and returns code, so that failures read
 * `return media__fail(err, errcap, CORE_EBADMEDIA, "...")` or `ret = media__fail(...); goto out`. */
int media__fail(char *err, size_t errcap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* FFmpeg's text for an AVERROR code, into buf. Returns buf. */
const char *media__averr_str(int averr, char *buf, size_t cap);

/* Translates an AVERROR met while reading or decoding into our code: plain negative errnos stay
 * (I/O), ENOMEM stays, anything about the data becomes bad_data (CORE_EBADMEDIA or CORE_EDECODE,
 * as the caller chooses). */
int media__translate(int averr, int bad_data);

/* True when the demuxer reads still pictures (image2, png_pipe, jpeg_pipe, ...). */
bool media__is_image_format(const AVInputFormat *f);

/* True for a stream that is a real video track: a video stream that is not cover art. */
bool media__is_real_video(const AVStream *st);

/* Opens path for reading and reads its stream information, with the module's whitelists and
 * bounds. On success *out is the opened context (close with avformat_close_input). On failure
 * returns -errno (cannot open), CORE_EBADMEDIA (not media we accept) or CORE_ELIMIT (a picture
 * exceeds MEDIA_MAX_PIXELS), with a reason in err, and *out is NULL. */
int media__open_input(const char *path, AVFormatContext **out, char *err, size_t errcap);

/* Opens a decoder for fmt's stream index, bounded to MEDIA_MAX_PIXELS. Returns 0 and *out, or
 * CORE_EBADMEDIA when no decoder exists, with a reason in err. */
int media__open_decoder(AVFormatContext *fmt, int index, AVCodecContext **out, char *err,
                        size_t errcap);

/* Seconds of ts in tb, or -1 when ts is AV_NOPTS_VALUE. */
double media__seconds(int64_t ts, AVRational tb);

#endif
