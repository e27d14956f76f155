/* media/pcm.c: decodes an input's first audio stream to 16 kHz mono signed 16-bit PCM in a WAV
 * file, the form speech recognition reads.
 *
 * Streaming: one packet and one frame at a time through the decoder and libswresample, straight
 * to the file; memory does not grow with the input's length. The WAV header is written as a
 * placeholder first and completed with the real sizes at the end.
 *
 * Damage: a decoder conceals small faults by itself; a packet it rejects is skipped and counted.
 * More than a few rejected packets (see too_damaged) fail the call with CORE_EDECODE, as does a
 * read error part way or a stream that yields no sound at all. On failure out_wav is removed.
 * Reentrant; runs on worker threads. */
#include "media/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/channel_layout.h>
#include <libswresample/swresample.h>

#define OUT_RATE 16000
#define WAV_HEADER_SIZE 44
/* A RIFF size field is 32 bits. */
#define WAV_MAX_DATA (UINT32_MAX - WAV_HEADER_SIZE)

typedef struct pcm_job {
    AVFormatContext *in;
    AVCodecContext *dec;
    int index;
    SwrContext *swr;
    /* what swr was set up for; a change mid-stream rebuilds it */
    int swr_format, swr_rate;
    AVChannelLayout swr_layout;
    uint8_t *buf;               /* converted samples, grown as frames need */
    int buf_samples;
    FILE *out;
    uint64_t data_bytes;
    int64_t packets, bad_packets;
    double first_bad_at;        /* seconds into the stream */
    char first_bad[AV_ERROR_MAX_STRING_SIZE];
} pcm_job_t;

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    put_le16(p, (uint16_t)v);
    put_le16(p + 2, (uint16_t)(v >> 16));
}

/* The canonical 44-byte header of a PCM WAV: RIFF, fmt (16 bytes), data. */
static void wav_header(uint8_t h[WAV_HEADER_SIZE], uint32_t data_bytes)
{
    memcpy(h, "RIFF", 4);
    put_le32(h + 4, 36 + data_bytes);
    memcpy(h + 8, "WAVEfmt ", 8);
    put_le32(h + 16, 16);                  /* fmt chunk size */
    put_le16(h + 20, 1);                   /* PCM */
    put_le16(h + 22, 1);                   /* channels */
    put_le32(h + 24, OUT_RATE);            /* sample rate */
    put_le32(h + 28, OUT_RATE * 2);        /* byte rate */
    put_le16(h + 32, 2);                   /* block align */
    put_le16(h + 34, 16);                  /* bits per sample */
    memcpy(h + 36, "data", 4);
    put_le32(h + 40, data_bytes);
}

/* More than a handful of rejected packets, or more than 1 in 100, is damage we report. */
static bool too_damaged(const pcm_job_t *j)
{
    int64_t allowed = j->packets / 100;
    if (allowed < 2)
        allowed = 2;
    return j->bad_packets > allowed;
}

static void note_bad(pcm_job_t *j, const AVPacket *pkt, int averr)
{
    if (j->bad_packets++ == 0) {
        const AVStream *st = j->in->streams[j->index];
        j->first_bad_at = pkt ? media__seconds(pkt->pts, st->time_base) : -1;
        media__averr_str(averr, j->first_bad, sizeof j->first_bad);
    }
}

static int write_samples(pcm_job_t *j, int n, char *err, size_t errcap)
{
    size_t bytes = (size_t)n * 2;
    if (n <= 0)
        return 0;
    if (j->data_bytes + bytes > WAV_MAX_DATA)
        return media__fail(err, errcap, CORE_ELIMIT, "the audio is too long for a WAV file");
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < bytes; i += 2) {
        uint8_t t = j->buf[i];
        j->buf[i] = j->buf[i + 1];
        j->buf[i + 1] = t;
    }
#endif
    if (fwrite(j->buf, 1, bytes, j->out) != bytes)
        return media__fail(err, errcap, -errno ? -errno : -EIO, "writing the PCM file failed: %s",
                           strerror(errno));
    j->data_bytes += bytes;
    return 0;
}

/* Converts in_samples samples (NULL: drains what swr holds) and writes them. */
static int convert(pcm_job_t *j, const uint8_t **in, int in_samples, char *err, size_t errcap)
{
    int room = swr_get_out_samples(j->swr, in_samples);
    int n;
    if (room < 0)
        return media__fail(err, errcap, CORE_EDECODE, "resampling failed");
    if (room > j->buf_samples) {
        /* Sized by the input's frame size: may fail instead of aborting. */
        uint8_t *p = av_realloc(j->buf, (size_t)room * 2);
        if (!p)
            return media__fail(err, errcap, -ENOMEM, "out of memory");
        j->buf = p;
        j->buf_samples = room;
    }
    if (room == 0)
        return 0;
    n = swr_convert(j->swr, &j->buf, room, in, in_samples);
    if (n < 0) {
        char msg[AV_ERROR_MAX_STRING_SIZE];
        return media__fail(err, errcap, CORE_EDECODE, "resampling failed: %s",
                           media__averr_str(n, msg, sizeof msg));
    }
    return write_samples(j, n, err, errcap);
}

/* Drains swr and frees it. */
static int flush_swr(pcm_job_t *j, char *err, size_t errcap)
{
    int ret = 0;
    if (j->swr) {
        /* swr keeps a filter's worth of delay; ask until it gives nothing more. */
        int64_t before;
        do {
            before = (int64_t)j->data_bytes;
            ret = convert(j, NULL, 0, err, errcap);
        } while (ret == 0 && (int64_t)j->data_bytes > before);
    }
    swr_free(&j->swr);
    av_channel_layout_uninit(&j->swr_layout);
    return ret;
}

static int setup_swr(pcm_job_t *j, const AVFrame *frame, char *err, size_t errcap)
{
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    AVChannelLayout in_layout = {0};
    char msg[AV_ERROR_MAX_STRING_SIZE];
    int ret;

    if (j->swr && frame->format == j->swr_format && frame->sample_rate == j->swr_rate &&
        av_channel_layout_compare(&frame->ch_layout, &j->swr_layout) == 0)
        return 0;
    if ((ret = flush_swr(j, err, errcap)) < 0)
        return ret;
    if (frame->sample_rate <= 0 || frame->ch_layout.nb_channels <= 0 ||
        frame->ch_layout.nb_channels > 64)
        return media__fail(err, errcap, CORE_EDECODE,
                           "the audio has an invalid format (%d Hz, %d channels)",
                           frame->sample_rate, frame->ch_layout.nb_channels);
    /* A layout of unknown order still has a channel count: assume the usual positions. */
    if (frame->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
        av_channel_layout_default(&in_layout, frame->ch_layout.nb_channels);
    else if ((ret = av_channel_layout_copy(&in_layout, &frame->ch_layout)) < 0)
        goto fail;
    ret = swr_alloc_set_opts2(&j->swr, &mono, AV_SAMPLE_FMT_S16, OUT_RATE, &in_layout,
                              frame->format, frame->sample_rate, 0, NULL);
    if (ret < 0)
        goto fail;
    ret = swr_init(j->swr);
    if (ret < 0)
        goto fail;
    j->swr_format = frame->format;
    j->swr_rate = frame->sample_rate;
    ret = av_channel_layout_copy(&j->swr_layout, &frame->ch_layout);
    if (ret < 0)
        goto fail;
    av_channel_layout_uninit(&in_layout);
    return 0;
fail:
    av_channel_layout_uninit(&in_layout);
    swr_free(&j->swr);
    return media__fail(err, errcap, media__translate(ret, CORE_EDECODE),
                       "cannot resample the audio: %s", media__averr_str(ret, msg, sizeof msg));
}

/* Sends pkt (NULL: flush) and converts every frame the decoder returns. A packet the decoder
 * rejects is counted, not fatal; only I/O and resampling errors are returned. */
static int decode(pcm_job_t *j, const AVPacket *pkt, AVFrame *frame, char *err, size_t errcap)
{
    int ret = avcodec_send_packet(j->dec, pkt);
    if (ret < 0 && ret != AVERROR(EAGAIN) && ret != AVERROR_EOF) {
        if (ret == AVERROR(ENOMEM))
            return media__fail(err, errcap, -ENOMEM, "out of memory");
        note_bad(j, pkt, ret);
        return 0;
    }
    for (;;) {
        ret = avcodec_receive_frame(j->dec, frame);
        if (ret == AVERROR(EAGAIN) || ret == AVERROR_EOF)
            return 0;
        if (ret < 0) {
            if (ret == AVERROR(ENOMEM))
                return media__fail(err, errcap, -ENOMEM, "out of memory");
            note_bad(j, pkt, ret);
            return 0;
        }
        ret = setup_swr(j, frame, err, errcap);
        if (ret == 0)
            ret = convert(j, (const uint8_t **)frame->extended_data, frame->nb_samples, err,
                          errcap);
        av_frame_unref(frame);
        if (ret < 0)
            return ret;
    }
}

int media_decode_pcm16k(const char *in_path, const char *out_wav, double *duration_out, char *err,
                        size_t errcap)
{
    pcm_job_t j = {.index = -1};
    AVPacket *pkt = NULL;
    AVFrame *frame = NULL;
    uint8_t header[WAV_HEADER_SIZE];
    char msg[AV_ERROR_MAX_STRING_SIZE];
    bool created = false;
    int ret;

    if (duration_out)
        *duration_out = 0;
    ret = media__open_input(in_path, &j.in, err, errcap);
    if (ret < 0)
        goto out;
    for (unsigned i = 0; i < j.in->nb_streams; i++) {
        const AVCodecParameters *par = j.in->streams[i]->codecpar;
        if (par->codec_type == AVMEDIA_TYPE_AUDIO && par->codec_id != AV_CODEC_ID_NONE) {
            j.index = (int)i;
            break;
        }
    }
    if (j.index < 0) {
        ret = media__fail(err, errcap, CORE_EBADMEDIA, "the file has no audio stream");
        goto out;
    }
    if ((ret = media__open_decoder(j.in, j.index, &j.dec, err, errcap)) < 0)
        goto out;
    pkt = av_packet_alloc();
    frame = av_frame_alloc();
    if (!pkt || !frame) {
        ret = media__fail(err, errcap, -ENOMEM, "out of memory");
        goto out;
    }

    j.out = fopen(out_wav, "wb");
    if (!j.out) {
        ret = media__fail(err, errcap, -errno, "cannot create %s: %s", out_wav, strerror(errno));
        goto out;
    }
    created = true;
    wav_header(header, 0);
    if (fwrite(header, 1, sizeof header, j.out) != sizeof header) {
        ret = media__fail(err, errcap, -EIO, "writing %s failed", out_wav);
        goto out;
    }

    while ((ret = av_read_frame(j.in, pkt)) >= 0) {
        if (pkt->stream_index == j.index) {
            j.packets++;
            ret = decode(&j, pkt, frame, err, errcap);
        }
        av_packet_unref(pkt);
        if (ret < 0)
            goto out;
    }
    if (ret != AVERROR_EOF) {
        ret = media__fail(err, errcap, media__translate(ret, CORE_EDECODE),
                          "the audio is damaged: reading stopped after %.2f s (%s)",
                          (double)j.data_bytes / (OUT_RATE * 2),
                          media__averr_str(ret, msg, sizeof msg));
        goto out;
    }
    if ((ret = decode(&j, NULL, frame, err, errcap)) < 0 || (ret = flush_swr(&j, err, errcap)) < 0)
        goto out;

    if (too_damaged(&j)) {
        char at[48] = "";
        if (j.first_bad_at >= 0)
            snprintf(at, sizeof at, " at %.2f s", j.first_bad_at);
        ret = media__fail(err, errcap, CORE_EDECODE,
                          "the audio is damaged: %lld of %lld packets could not be decoded "
                          "(first%s: %s)",
                          (long long)j.bad_packets, (long long)j.packets, at, j.first_bad);
        goto out;
    }
    if (j.data_bytes == 0) {
        ret = media__fail(err, errcap, CORE_EDECODE, "no audio could be decoded%s%s",
                          j.bad_packets ? ": " : "", j.bad_packets ? j.first_bad : "");
        goto out;
    }

    wav_header(header, (uint32_t)j.data_bytes);
    if (fseek(j.out, 0, SEEK_SET) != 0 || fwrite(header, 1, sizeof header, j.out) != sizeof header) {
        ret = media__fail(err, errcap, -EIO, "writing %s failed", out_wav);
        goto out;
    }
    ret = fclose(j.out);
    j.out = NULL;
    if (ret != 0) {
        ret = media__fail(err, errcap, -errno, "writing %s failed: %s", out_wav, strerror(errno));
        goto out;
    }
    if (duration_out)
        *duration_out = (double)j.data_bytes / (OUT_RATE * 2);
    ret = 0;
out:
    if (j.out)
        fclose(j.out);
    if (ret < 0 && created)
        unlink(out_wav);
    swr_free(&j.swr);
    av_channel_layout_uninit(&j.swr_layout);
    av_freep(&j.buf);
    av_frame_free(&frame);
    av_packet_free(&pkt);
    avcodec_free_context(&j.dec);
    avformat_close_input(&j.in);
    return ret;
}
