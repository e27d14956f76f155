/* media/split.c: separates an input's first audio track and first video track into files of their
 * own, by stream copy (never re-encoding), in one demuxing pass that feeds two muxers.
 *
 * Which container a track goes into depends on its codec (the table in pick_container, also in
 * media.h and docs/api.md):
 *   audio: AAC, ALAC -> .m4a (ipod muxer)   MP3 -> .mp3    Opus -> .opus   Vorbis -> .ogg
 *          FLAC -> .flac   PCM that WAV can hold -> .wav   anything else -> .mka
 *   video: H.264, HEVC, MPEG-4 part 2, AV1 -> .mp4   VP8, VP9 -> .webm   anything else -> .mkv
 * When the chosen muxer cannot take the codec, Matroska (which takes nearly all) is used instead.
 *
 * Invariants: outputs are written straight to their final paths; on any failure both are removed
 * and both structs say present = false. Timestamps are copied (rescaled), so the tracks start at
 * the original's times; dts is only nudged where a damaged input would make it go backwards,
 * which muxers refuse. Reentrant; runs on worker threads; memory is one packet at a time. */
#include "media/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct container {
    const char *muxer;
    const char *ext;
    const char *mime;
} container_t;

/* One output: a muxer over one stream copied from input stream in_index. */
typedef struct output {
    media_track_file_t *file;
    const char *what;           /* "audio" or "video", for messages */
    int in_index;
    AVFormatContext *fmt;
    bool opened;                /* the file exists on disk: remove it on failure */
    bool header_written;
    int64_t first_ts, end_ts;   /* extent of the copied packets, in the input stream's time base */
    int64_t last_dts;           /* in the output stream's time base */
    int64_t packets;
} output_t;

static const container_t mkv_audio = {"matroska", "mka", "audio/x-matroska"};
static const container_t mkv_video = {"matroska", "mkv", "video/x-matroska"};

static bool is_pcm(enum AVCodecID id)
{
    return id >= AV_CODEC_ID_FIRST_AUDIO && id < AV_CODEC_ID_ADPCM_IMA_QT;
}

static container_t pick_container(enum AVMediaType type, enum AVCodecID id)
{
    container_t c;
    if (type == AVMEDIA_TYPE_AUDIO) {
        switch (id) {
        case AV_CODEC_ID_AAC:
        case AV_CODEC_ID_ALAC: c = (container_t){"ipod", "m4a", "audio/mp4"}; break;
        case AV_CODEC_ID_MP3: c = (container_t){"mp3", "mp3", "audio/mpeg"}; break;
        case AV_CODEC_ID_OPUS: c = (container_t){"opus", "opus", "audio/ogg"}; break;
        case AV_CODEC_ID_VORBIS: c = (container_t){"ogg", "ogg", "audio/ogg"}; break;
        case AV_CODEC_ID_FLAC: c = (container_t){"flac", "flac", "audio/flac"}; break;
        default: c = is_pcm(id) ? (container_t){"wav", "wav", "audio/wav"} : mkv_audio;
        }
    } else {
        switch (id) {
        case AV_CODEC_ID_H264:
        case AV_CODEC_ID_HEVC:
        case AV_CODEC_ID_MPEG4:
        case AV_CODEC_ID_AV1: c = (container_t){"mp4", "mp4", "video/mp4"}; break;
        case AV_CODEC_ID_VP8:
        case AV_CODEC_ID_VP9: c = (container_t){"webm", "webm", "video/webm"}; break;
        default: c = mkv_video;
        }
    }
    if (strcmp(c.muxer, "matroska") != 0) {
        const AVOutputFormat *of = av_guess_format(c.muxer, NULL, NULL);
        /* 0 is a definite no; some muxers answer "unknown" (< 0) for their own codec. */
        if (!of || avformat_query_codec(of, id, FF_COMPLIANCE_NORMAL) == 0)
            c = type == AVMEDIA_TYPE_AUDIO ? mkv_audio : mkv_video;
    }
    return c;
}

/* Creates the output file and writes its header. */
static int open_output(output_t *o, AVFormatContext *in, const char *out_prefix, char *err,
                       size_t errcap)
{
    const AVStream *ist = in->streams[o->in_index];
    const AVCodecParameters *ipar = ist->codecpar;
    container_t c = pick_container(ipar->codec_type, ipar->codec_id);
    AVDictionary *opts = NULL;
    AVStream *ost;
    char msg[AV_ERROR_MAX_STRING_SIZE];
    int n, ret;

    n = snprintf(o->file->path, sizeof o->file->path, "%s.%s.%s", out_prefix, o->what, c.ext);
    if (n < 0 || (size_t)n >= sizeof o->file->path)
        return media__fail(err, errcap, -ENAMETOOLONG, "output path too long");
    snprintf(o->file->ext, sizeof o->file->ext, "%s", c.ext);
    snprintf(o->file->mime, sizeof o->file->mime, "%s", c.mime);
    snprintf(o->file->codec, sizeof o->file->codec, "%s", avcodec_get_name(ipar->codec_id));

    ret = avformat_alloc_output_context2(&o->fmt, NULL, c.muxer, o->file->path);
    if (ret < 0)
        goto fail;
    ost = avformat_new_stream(o->fmt, NULL);
    if (!ost) {
        ret = AVERROR(ENOMEM);
        goto fail;
    }
    ret = avcodec_parameters_copy(ost->codecpar, ipar);
    if (ret < 0)
        goto fail;
    /* The input container's tag (e.g. "mp4a", "avc1") may mean nothing in the output's. */
    ost->codecpar->codec_tag = 0;
    ost->time_base = ist->time_base;
    ost->disposition = ist->disposition & ~AV_DISPOSITION_ATTACHED_PIC;
    av_dict_copy(&ost->metadata, ist->metadata, 0);
    /* Keeps creation_time, location and the like that phones record. */
    av_dict_copy(&o->fmt->metadata, in->metadata, 0);
    /* Side data carries the display matrix: a phone's portrait video stays upright. */
    for (int i = 0; i < ist->nb_side_data; i++) {
        const AVPacketSideData *sd = &ist->side_data[i];
        uint8_t *dst = av_stream_new_side_data(ost, sd->type, sd->size);
        if (!dst) {
            ret = AVERROR(ENOMEM);
            goto fail;
        }
        memcpy(dst, sd->data, sd->size);
    }

    ret = avio_open(&o->fmt->pb, o->file->path, AVIO_FLAG_WRITE);
    if (ret < 0)
        return media__fail(err, errcap, media__translate(ret, -EIO), "cannot create %s: %s",
                           o->file->path, media__averr_str(ret, msg, sizeof msg));
    o->opened = true;
    /* Index first, so the file can be played while it downloads. */
    if (strcmp(c.muxer, "mp4") == 0 || strcmp(c.muxer, "ipod") == 0)
        av_dict_set(&opts, "movflags", "+faststart", 0);
    ret = avformat_write_header(o->fmt, &opts);
    av_dict_free(&opts);
    if (ret < 0)
        goto fail;
    o->header_written = true;
    return 0;
fail:
    return media__fail(err, errcap, media__translate(ret, CORE_EBADMEDIA),
                       "cannot store the %s track (%s) as .%s: %s", o->what,
                       avcodec_get_name(ipar->codec_id), c.ext,
                       media__averr_str(ret, msg, sizeof msg));
}

/* Copies one packet of o's stream. pkt is unreferenced on return. */
static int write_packet(output_t *o, AVFormatContext *in, AVPacket *pkt, char *err, size_t errcap)
{
    const AVStream *ist = in->streams[o->in_index];
    const AVStream *ost = o->fmt->streams[0];
    char msg[AV_ERROR_MAX_STRING_SIZE];
    int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
    int ret;

    if (ts != AV_NOPTS_VALUE) {
        /* Damaged inputs can carry any 64-bit value: keep the arithmetic from overflowing. */
        int64_t end = pkt->duration > 0 && ts < INT64_MAX - pkt->duration ? ts + pkt->duration : ts;
        if (o->first_ts == AV_NOPTS_VALUE || ts < o->first_ts)
            o->first_ts = ts;
        if (o->end_ts == AV_NOPTS_VALUE || end > o->end_ts)
            o->end_ts = end;
    }
    av_packet_rescale_ts(pkt, ist->time_base, ost->time_base);
    pkt->stream_index = 0;
    pkt->pos = -1;
    /* Muxers refuse a dts that does not increase; damaged inputs (or a coarser output time base)
     * can produce one. */
    if (pkt->dts != AV_NOPTS_VALUE) {
        if (o->last_dts != AV_NOPTS_VALUE && pkt->dts <= o->last_dts &&
            o->last_dts < INT64_MAX - 1) {
            pkt->dts = o->last_dts + 1;
            if (pkt->pts != AV_NOPTS_VALUE && pkt->pts < pkt->dts)
                pkt->pts = pkt->dts;
        }
        o->last_dts = pkt->dts;
    }
    ret = av_interleaved_write_frame(o->fmt, pkt);
    av_packet_unref(pkt);
    if (ret < 0)
        return media__fail(err, errcap, media__translate(ret, CORE_EDECODE),
                           "writing the %s track failed: %s", o->what,
                           media__averr_str(ret, msg, sizeof msg));
    o->packets++;
    return 0;
}

static int finish_output(output_t *o, AVFormatContext *in, char *err, size_t errcap)
{
    const AVStream *ist = in->streams[o->in_index];
    char msg[AV_ERROR_MAX_STRING_SIZE];
    int ret;

    if (o->packets == 0)
        return media__fail(err, errcap, CORE_EDECODE, "the %s track holds no data", o->what);
    ret = av_write_trailer(o->fmt);
    if (ret < 0)
        return media__fail(err, errcap, media__translate(ret, CORE_EDECODE),
                           "finishing the %s track failed: %s", o->what,
                           media__averr_str(ret, msg, sizeof msg));
    ret = avio_closep(&o->fmt->pb);
    if (ret < 0)
        return media__fail(err, errcap, media__translate(ret, -EIO), "writing %s failed: %s",
                           o->file->path, media__averr_str(ret, msg, sizeof msg));
    o->file->duration = o->first_ts == AV_NOPTS_VALUE
                            ? 0
                            : media__seconds(o->end_ts, ist->time_base) -
                                  media__seconds(o->first_ts, ist->time_base);
    o->file->present = true;
    return 0;
}

static void close_output(output_t *o)
{
    if (o->fmt) {
        avio_closep(&o->fmt->pb);
        avformat_free_context(o->fmt);
        o->fmt = NULL;
    }
}

int media_split(const char *in_path, const char *out_prefix, media_track_file_t *audio,
                media_track_file_t *video, char *err, size_t errcap)
{
    AVFormatContext *in = NULL;
    AVPacket *pkt = NULL;
    output_t outs[2] = {
        {.file = audio, .what = "audio", .in_index = -1},
        {.file = video, .what = "video", .in_index = -1},
    };
    char msg[AV_ERROR_MAX_STRING_SIZE];
    int ret;

    memset(audio, 0, sizeof *audio);
    memset(video, 0, sizeof *video);
    for (int k = 0; k < 2; k++)
        outs[k].first_ts = outs[k].end_ts = outs[k].last_dts = AV_NOPTS_VALUE;

    ret = media__open_input(in_path, &in, err, errcap);
    if (ret < 0)
        goto out;
    for (unsigned i = 0; i < in->nb_streams; i++) {
        const AVStream *st = in->streams[i];
        const AVCodecParameters *par = st->codecpar;
        if (par->codec_id == AV_CODEC_ID_NONE)
            continue;
        if (par->codec_type == AVMEDIA_TYPE_AUDIO && par->sample_rate > 0 && outs[0].in_index < 0)
            outs[0].in_index = (int)i;
        /* A still picture or cover art is not a video track. */
        else if (media__is_real_video(st) && !media__is_image_format(in->iformat) &&
                 par->width > 0 && par->height > 0 && outs[1].in_index < 0)
            outs[1].in_index = (int)i;
    }
    if (outs[0].in_index < 0 && outs[1].in_index < 0) {
        ret = media__fail(err, errcap, CORE_EBADMEDIA, "no audio or video track to separate");
        goto out;
    }
    for (int k = 0; k < 2; k++) {
        if (outs[k].in_index >= 0 && (ret = open_output(&outs[k], in, out_prefix, err, errcap)) < 0)
            goto out;
    }

    pkt = av_packet_alloc();
    if (!pkt) {
        ret = media__fail(err, errcap, -ENOMEM, "out of memory");
        goto out;
    }
    while ((ret = av_read_frame(in, pkt)) >= 0) {
        output_t *o = NULL;
        for (int k = 0; k < 2; k++)
            if (outs[k].in_index == pkt->stream_index)
                o = &outs[k];
        if (!o) {
            av_packet_unref(pkt);
            continue;
        }
        if ((ret = write_packet(o, in, pkt, err, errcap)) < 0)
            goto out;
    }
    if (ret != AVERROR_EOF) {
        ret = media__fail(err, errcap, media__translate(ret, CORE_EDECODE),
                          "reading the file failed part way: %s",
                          media__averr_str(ret, msg, sizeof msg));
        goto out;
    }
    for (int k = 0; k < 2; k++) {
        if (outs[k].in_index >= 0 && (ret = finish_output(&outs[k], in, err, errcap)) < 0)
            goto out;
    }
    ret = 0;
out:
    for (int k = 0; k < 2; k++) {
        close_output(&outs[k]);
        if (ret < 0) {
            if (outs[k].opened)
                unlink(outs[k].file->path);
            outs[k].file->present = false;
        }
    }
    av_packet_free(&pkt);
    avformat_close_input(&in);
    return ret;
}
