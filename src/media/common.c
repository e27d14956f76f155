/* media/common.c: the module's shared plumbing — error messages, translating AVERROR codes once,
 * and opening inputs and decoders with the same safety settings everywhere.
 *
 * Safety: uploads are untrusted. Inputs are opened with a demuxer whitelist (containers a phone
 * or desktop produces; no playlists such as HLS, DASH or concat, which would open other files or
 * URLs), the "file" protocol only, bounded probing, and decoders refuse pictures larger than
 * MEDIA_MAX_PIXELS before allocating them. Reentrant: no state outside the call's own objects. */
#include "media/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Containers we accept. Matching is per name token, so "mov" admits "mov,mp4,m4a,3gp,3g2,mj2". */
static const char demuxer_whitelist[] =
    "mov,matroska,avi,flv,mpegts,mpeg,ogg,mp3,aac,wav,w64,flac,aiff,caf,amr,amrnb,amrwb,asf,ac3,"
    "eac3,wv,ape,dv,gif,image2,png_pipe,jpeg_pipe,webp_pipe,bmp_pipe,tiff_pipe,gif_pipe";

/* Demuxers that return one still picture. */
static const char *const image_demuxers[] = {
    "image2", "png_pipe", "jpeg_pipe", "webp_pipe", "bmp_pipe", "tiff_pipe", "gif_pipe", "gif",
};

int media__fail(char *err, size_t errcap, int code, const char *fmt, ...)
{
    if (err && errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *media__averr_str(int averr, char *buf, size_t cap)
{
    if (av_strerror(averr, buf, cap) < 0)
        snprintf(buf, cap, "error %d", averr);
    return buf;
}

int media__translate(int averr, int bad_data)
{
    if (averr >= 0)
        return averr;
    if (averr == AVERROR(ENOMEM))
        return -ENOMEM;
    /* AVERROR(e) is -e on POSIX; FFmpeg's own codes are tags far below the errno range. */
    if (averr > -4096 && averr != AVERROR(EINVAL) && averr != AVERROR(ENOSYS) &&
        averr != AVERROR(ERANGE) && averr != AVERROR(EAGAIN))
        return averr;
    return bad_data;
}

bool media__is_image_format(const AVInputFormat *f)
{
    if (!f)
        return false;
    for (size_t i = 0; i < sizeof image_demuxers / sizeof image_demuxers[0]; i++)
        if (strcmp(f->name, image_demuxers[i]) == 0)
            return true;
    return false;
}

bool media__is_real_video(const AVStream *st)
{
    return st->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
           !(st->disposition & AV_DISPOSITION_ATTACHED_PIC);
}

double media__seconds(int64_t ts, AVRational tb)
{
    if (ts == AV_NOPTS_VALUE || tb.den == 0)
        return -1;
    return (double)ts * av_q2d(tb);
}

/* Reads the picture size a PNG or JPEG header states, without decoding. The decoder refuses a
 * picture above MEDIA_MAX_PIXELS without telling why; this tells the two cases apart. */
static bool peek_image_size(const char *path, int64_t *w, int64_t *h)
{
    unsigned char b[24];
    bool found = false;
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    if (fread(b, 1, 24, f) == 24 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0 &&
        memcmp(b + 12, "IHDR", 4) == 0) {
        *w = (int64_t)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
        *h = (int64_t)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
        found = true;
    } else if (b[0] == 0xff && b[1] == 0xd8 && fseek(f, 2, SEEK_SET) == 0) {
        /* Walk the marker segments up to the first start-of-frame. */
        for (int seg = 0; seg < 256 && !found; seg++) {
            int c, m, len;
            while ((c = fgetc(f)) != EOF && c != 0xff)
                ;
            while ((m = fgetc(f)) == 0xff)
                ;
            if (c == EOF || m == EOF || m == 0xd9)
                break;
            if (m == 0x01 || (m >= 0xd0 && m <= 0xd8))
                continue;
            if (fread(b, 1, 2, f) != 2)
                break;
            len = b[0] << 8 | b[1];
            if (len < 2)
                break;
            if (m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc) {
                if (fread(b, 1, 5, f) != 5)
                    break;
                *h = b[1] << 8 | b[2];
                *w = b[3] << 8 | b[4];
                found = true;
            } else if (fseek(f, len - 2, SEEK_CUR) != 0) {
                break;
            }
        }
    }
    fclose(f);
    return found;
}

int media__open_input(const char *path, AVFormatContext **out, char *err, size_t errcap)
{
    AVFormatContext *fmt = NULL;
    AVDictionary *opts = NULL;
    AVDictionary **stream_opts = NULL;
    unsigned nb_opts = 0;
    char msg[AV_ERROR_MAX_STRING_SIZE];
    struct stat stbuf;
    int ret;

    *out = NULL;
    /* stat first: a missing file is an I/O error with errno, not "not media". */
    if (stat(path, &stbuf) != 0)
        return media__fail(err, errcap, -errno, "cannot open the file: %s", strerror(errno));
    if (!S_ISREG(stbuf.st_mode))
        return media__fail(err, errcap, CORE_EBADMEDIA, "not a recognised media file (not a "
                                                        "regular file)");
    if (stbuf.st_size == 0)
        return media__fail(err, errcap, CORE_EBADMEDIA,
                           "not a recognised media file (the file is empty)");

    fmt = avformat_alloc_context();
    if (!fmt)
        return media__fail(err, errcap, -ENOMEM, "out of memory");
    av_dict_set(&opts, "protocol_whitelist", "file", 0);
    av_dict_set(&opts, "format_whitelist", demuxer_whitelist, 0);
    av_dict_set_int(&opts, "probesize", MEDIA__PROBESIZE, 0);
    av_dict_set_int(&opts, "analyzeduration", MEDIA__ANALYZE_US, 0);
    ret = avformat_open_input(&fmt, path, NULL, &opts);
    if (ret < 0) {
        /* fmt was freed by avformat_open_input. */
        if (ret == AVERROR(EINVAL))
            ret = media__fail(err, errcap, CORE_EBADMEDIA,
                              "not a recognised media file (a container we do not accept)");
        else if (ret == AVERROR_INVALIDDATA)
            ret = media__fail(err, errcap, CORE_EBADMEDIA,
                              "not a recognised media file (unknown format, or damaged data)");
        else if (media__translate(ret, CORE_EBADMEDIA) == CORE_EBADMEDIA)
            ret = media__fail(err, errcap, CORE_EBADMEDIA, "not a recognised media file (%s)",
                              media__averr_str(ret, msg, sizeof msg));
        else
            ret = media__fail(err, errcap, media__translate(ret, CORE_EBADMEDIA),
                              "cannot read the file: %s", media__averr_str(ret, msg, sizeof msg));
        goto out;
    }

    /* Stream information may decode a frame of each stream: bound the picture size first. */
    nb_opts = fmt->nb_streams;
    if (nb_opts) {
        stream_opts = av_calloc(nb_opts, sizeof *stream_opts);
        if (!stream_opts) {
            ret = media__fail(err, errcap, -ENOMEM, "out of memory");
            goto out;
        }
        for (unsigned i = 0; i < nb_opts; i++)
            av_dict_set_int(&stream_opts[i], "max_pixels", MEDIA_MAX_PIXELS, 0);
    }
    ret = avformat_find_stream_info(fmt, stream_opts);
    if (ret < 0) {
        media__averr_str(ret, msg, sizeof msg);
        ret = media__fail(err, errcap, media__translate(ret, CORE_EBADMEDIA),
                          "not a recognised media file (%s)", msg);
        goto out;
    }
    for (unsigned i = 0; i < fmt->nb_streams; i++) {
        const AVCodecParameters *par = fmt->streams[i]->codecpar;
        int64_t w = par->width, h = par->height;
        if (par->codec_type != AVMEDIA_TYPE_VIDEO)
            continue;
        if (w == 0 && media__is_image_format(fmt->iformat) && !peek_image_size(path, &w, &h))
            continue;
        /* A PNG header's sizes are 32-bit each: compare without multiplying. */
        if (w > 0 && h > MEDIA_MAX_PIXELS / w) {
            ret = media__fail(err, errcap, CORE_ELIMIT,
                              "the picture is too large (%lldx%lld; at most %lld megapixels)",
                              (long long)w, (long long)h, (long long)MEDIA_MAX_PIXELS >> 20);
            goto out;
        }
    }
    *out = fmt;
    fmt = NULL;
    ret = 0;
out:
    if (stream_opts) {
        for (unsigned i = 0; i < nb_opts; i++)
            av_dict_free(&stream_opts[i]);
        av_freep(&stream_opts);
    }
    av_dict_free(&opts);
    avformat_close_input(&fmt);
    return ret;
}

int media__open_decoder(AVFormatContext *fmt, int index, AVCodecContext **out, char *err,
                        size_t errcap)
{
    const AVStream *st = fmt->streams[index];
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    AVCodecContext *ctx = NULL;
    char msg[AV_ERROR_MAX_STRING_SIZE];
    int ret;

    *out = NULL;
    if (!codec)
        return media__fail(err, errcap, CORE_EBADMEDIA, "no decoder for the %s codec '%s'",
                           av_get_media_type_string(st->codecpar->codec_type),
                           avcodec_get_name(st->codecpar->codec_id));
    ctx = avcodec_alloc_context3(codec);
    if (!ctx)
        return media__fail(err, errcap, -ENOMEM, "out of memory");
    ret = avcodec_parameters_to_context(ctx, st->codecpar);
    if (ret < 0)
        goto fail;
    ctx->pkt_timebase = st->time_base;
    ctx->max_pixels = MEDIA_MAX_PIXELS;
    ret = avcodec_open2(ctx, codec, NULL);
    if (ret < 0)
        goto fail;
    *out = ctx;
    return 0;
fail:
    avcodec_free_context(&ctx);
    return media__fail(err, errcap, media__translate(ret, CORE_EBADMEDIA),
                       "cannot open the %s decoder: %s", avcodec_get_name(st->codecpar->codec_id),
                       media__averr_str(ret, msg, sizeof msg));
}
