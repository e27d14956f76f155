/* media opus: PCM to Opus in Ogg, in memory (for synthesized speech served by personad).
 * Resamples with libswresample in one pass to 24 kHz (input up to 24 kHz) or 48 kHz (libopus
 * takes 8/12/16/24/48 kHz), encodes 20 ms frames with libopus (or FFmpeg's native
 * encoder where libopus is missing) and muxes into a dynamic AVIOContext. Reentrant; blocks
 * only for CPU. */
#include "media/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>

#define OPUS_BITRATE 32000

/* Sends frame (NULL: flush) and writes every packet that comes out. Returns 0 or an AVERROR. */
static int encode_write(AVCodecContext *enc, AVFrame *frame, AVFormatContext *mux, AVStream *st,
                        AVPacket *pkt)
{
    int ret = avcodec_send_frame(enc, frame);
    if (ret < 0)
        return ret;
    for (;;) {
        ret = avcodec_receive_packet(enc, pkt);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return 0;
        if (ret < 0)
            return ret;
        av_packet_rescale_ts(pkt, enc->time_base, st->time_base);
        pkt->stream_index = st->index;
        ret = av_interleaved_write_frame(mux, pkt);
        av_packet_unref(pkt);
        if (ret < 0)
            return ret;
    }
}

int media_encode_opus_ogg(const int16_t *pcm, size_t n, int rate, uint8_t **out, size_t *out_len,
                          char *err, size_t errcap)
{
    *out = NULL;
    *out_len = 0;
    if (rate < 8000 || rate > 192000 || (n > 0 && !pcm) || n > (size_t)INT32_MAX)
        return media__fail(err, errcap, -EINVAL, "bad PCM for Opus: %zu samples at %d Hz", n,
                           rate);
    AVFormatContext *mux = NULL;
    AVCodecContext *enc = NULL;
    SwrContext *swr = NULL;
    AVFrame *frame = NULL;
    AVPacket *pkt = NULL;
    uint8_t *dyn = NULL;
    uint8_t *res = NULL; /* the resampled input, interleaved (mono) */
    char e[128];
    int ret = 0, averr;

    const AVCodec *codec = avcodec_find_encoder_by_name("libopus");
    if (!codec)
        codec = avcodec_find_encoder(AV_CODEC_ID_OPUS);
    if (!codec)
        return media__fail(err, errcap, CORE_EBADMEDIA, "this FFmpeg has no Opus encoder");
    if ((averr = avformat_alloc_output_context2(&mux, NULL, "ogg", NULL)) < 0 || !mux) {
        ret = media__fail(err, errcap, CORE_EBADMEDIA, "no Ogg muxer: %s",
                          media__averr_str(averr, e, sizeof e));
        goto out;
    }
    enc = avcodec_alloc_context3(codec);
    frame = av_frame_alloc();
    pkt = av_packet_alloc();
    if (!enc || !frame || !pkt) {
        ret = media__fail(err, errcap, -ENOMEM, "out of memory");
        goto out;
    }
    /* espeak-ng's 22050 Hz speech loses nothing at 24 kHz, which encodes about twice as fast */
    const int OPUS_RATE = rate <= 24000 ? 24000 : 48000;
    enc->sample_rate = OPUS_RATE;
    enc->bit_rate = OPUS_BITRATE;
    enc->time_base = (AVRational){1, OPUS_RATE};
    av_channel_layout_default(&enc->ch_layout, 1);
    enc->sample_fmt = codec->sample_fmts ? codec->sample_fmts[0] : AV_SAMPLE_FMT_S16;
    for (const enum AVSampleFormat *f = codec->sample_fmts; f && *f != AV_SAMPLE_FMT_NONE; f++)
        if (*f == AV_SAMPLE_FMT_S16)
            enc->sample_fmt = AV_SAMPLE_FMT_S16;
    if (!strcmp(codec->name, "opus"))
        enc->strict_std_compliance = FF_COMPLIANCE_EXPERIMENTAL;
    else
        av_opt_set(enc->priv_data, "application", "voip", 0);
    /* libopus's default complexity 10 costs twice the CPU of 5 for no audible gain on
     * synthesized speech at 32 kbit/s */
    enc->compression_level = 5;
    if (mux->oformat->flags & AVFMT_GLOBALHEADER)
        enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((averr = avcodec_open2(enc, codec, NULL)) < 0) {
        ret = media__fail(err, errcap, media__translate(averr, CORE_EBADMEDIA),
                          "cannot open the Opus encoder: %s",
                          media__averr_str(averr, e, sizeof e));
        goto out;
    }
    AVStream *st = avformat_new_stream(mux, NULL);
    if (!st || avcodec_parameters_from_context(st->codecpar, enc) < 0) {
        ret = media__fail(err, errcap, -ENOMEM, "out of memory");
        goto out;
    }
    st->time_base = enc->time_base;

    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    if ((averr = swr_alloc_set_opts2(&swr, &enc->ch_layout, enc->sample_fmt, OPUS_RATE, &mono,
                                     AV_SAMPLE_FMT_S16, rate, 0, NULL)) < 0 ||
        (averr = swr_init(swr)) < 0) {
        ret = media__fail(err, errcap, media__translate(averr, CORE_EBADMEDIA),
                          "cannot resample %d Hz to %d Hz: %s", rate, OPUS_RATE,
                          media__averr_str(averr, e, sizeof e));
        goto out;
    }
    if ((averr = avio_open_dyn_buf(&mux->pb)) < 0 ||
        (averr = avformat_write_header(mux, NULL)) < 0) {
        ret = media__fail(err, errcap, media__translate(averr, CORE_EBADMEDIA),
                          "cannot start the Ogg stream: %s", media__averr_str(averr, e, sizeof e));
        goto out;
    }

    /* Resample the whole input at once (speech: minutes at most), then cut it into frames. */
    const int fsz = enc->frame_size > 0 ? enc->frame_size : 960;
    int64_t cap = av_rescale_rnd((int64_t)n, OPUS_RATE, rate, AV_ROUND_UP) + 256;
    int bps = av_get_bytes_per_sample(enc->sample_fmt);
    if (cap > INT32_MAX / 4 || !(res = malloc((size_t)cap * (size_t)bps))) {
        ret = media__fail(err, errcap, -ENOMEM, "out of memory for %zu samples", n);
        goto out;
    }
    int64_t have = 0;
    if (n > 0) {
        const uint8_t *in = (const uint8_t *)pcm;
        uint8_t *o = res;
        if ((averr = swr_convert(swr, &o, (int)cap, &in, (int)n)) < 0)
            goto av_fail;
        have = averr;
    }
    for (;;) { /* drain what the filter still holds */
        uint8_t *o = res + have * bps;
        if (have >= cap || (averr = swr_convert(swr, &o, (int)(cap - have), NULL, 0)) < 0)
            break;
        if (averr == 0)
            break;
        have += averr;
    }
    if (averr < 0)
        goto av_fail;
    /* exactly the input's length: the resampler may hand back a sample more or less */
    int64_t want = av_rescale_rnd((int64_t)n, OPUS_RATE, rate, AV_ROUND_NEAR_INF);
    if (have > want)
        have = want;
    frame->format = enc->sample_fmt;
    frame->sample_rate = OPUS_RATE;
    frame->nb_samples = fsz;
    if ((averr = av_channel_layout_copy(&frame->ch_layout, &enc->ch_layout)) < 0 ||
        (averr = av_frame_get_buffer(frame, 0)) < 0) {
        ret = media__fail(err, errcap, -ENOMEM, "out of memory");
        goto out;
    }
    for (int64_t pos = 0; pos < have; pos += fsz) {
        int got = (int)(have - pos < fsz ? have - pos : fsz);
        if ((averr = av_frame_make_writable(frame)) < 0)
            goto av_fail;
        memcpy(frame->data[0], res + pos * bps, (size_t)got * (size_t)bps);
        /* A short last frame: the encoder pads it and gives its packet the short duration
         * (AV_CODEC_CAP_SMALL_LAST_FRAME), which the Ogg muxer's last granule position keeps. */
        frame->pts = pos;
        frame->nb_samples = got;
        if (got < fsz && !(codec->capabilities & AV_CODEC_CAP_SMALL_LAST_FRAME)) {
            av_samples_set_silence(frame->data, got, fsz - got, 1, enc->sample_fmt);
            frame->nb_samples = fsz;
        }
        if ((averr = encode_write(enc, frame, mux, st, pkt)) < 0)
            goto av_fail;
    }
    if ((averr = encode_write(enc, NULL, mux, st, pkt)) < 0 || (averr = av_write_trailer(mux)) < 0)
        goto av_fail;
    int dlen = avio_close_dyn_buf(mux->pb, &dyn);
    mux->pb = NULL;
    if (dlen <= 0 || !dyn) {
        ret = media__fail(err, errcap, -ENOMEM, "out of memory");
        goto out;
    }
    /* av_malloc'd memory is not ours to hand out as malloc'd: copy it */
    *out = malloc((size_t)dlen);
    if (!*out) {
        ret = media__fail(err, errcap, -ENOMEM, "out of memory");
        goto out;
    }
    memcpy(*out, dyn, (size_t)dlen);
    *out_len = (size_t)dlen;
    goto out;
av_fail:
    ret = media__fail(err, errcap, media__translate(averr, CORE_EBADMEDIA),
                      "Opus encoding failed: %s", media__averr_str(averr, e, sizeof e));
out:
    if (mux && mux->pb) {
        uint8_t *junk = NULL;
        avio_close_dyn_buf(mux->pb, &junk);
        av_free(junk);
        mux->pb = NULL;
    }
    av_free(dyn);
    free(res);
    avformat_free_context(mux);
    avcodec_free_context(&enc);
    swr_free(&swr);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    return ret;
}
