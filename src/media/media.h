/* media: the only module that sees FFmpeg's libraries. Probing, separation of the audio and video
 * tracks by stream copy, decoding audio to 16 kHz mono PCM, and JPEG thumbnails.
 *
 * Threads: every function is reentrant and may block for a long time (file I/O, decoding): call
 * from worker threads only. Memory stays bounded whatever the input length: packets and frames
 * are streamed, never collected.
 *
 * Errors: 0 on success; CORE_EBADMEDIA when the input is not media of the expected kind;
 * CORE_EDECODE when decoding fails part way (damaged data); CORE_ELIMIT when an image is larger
 * than the decompression-bomb bound; -errno for I/O. Every failing call also writes a
 * human-readable reason into err (at most errcap bytes, NUL-terminated), fit to show to a user. */
#ifndef PERSONA_MEDIA_H
#define PERSONA_MEDIA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest picture (width x height) we decode: 64 megapixels. */
#define MEDIA_MAX_PIXELS (64LL * 1024 * 1024)

typedef struct media_probe {
    char container[64];     /* FFmpeg's demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" */
    char container_long[128];
    double duration;        /* seconds; < 0 if unknown (a still image) */
    int64_t bit_rate;       /* bits/s, 0 if unknown */
    int n_streams;
    bool has_video;         /* a real video stream (not cover art) */
    bool has_audio;
    bool is_image;          /* a still picture: image2/png/jpeg pipe demuxers, single frame */
    /* first video stream (or the picture); width and height as coded, before any rotation the
     * container asks for (a portrait phone video reads 1920x1080 here) */
    char video_codec[32];
    int width, height;
    double fps;             /* average frame rate; 0 for images */
    /* first audio stream */
    char audio_codec[32];
    int sample_rate, channels;
} media_probe_t;

/* Opens path with libavformat and fills out. Fails with CORE_EBADMEDIA if FFmpeg does not
 * recognise the data as a media container, or it has neither a decodable audio nor video stream,
 * or a picture exceeds MEDIA_MAX_PIXELS (CORE_ELIMIT). */
int media_probe_file(const char *path, media_probe_t *out, char *err, size_t errcap);
/* Checks the probed file is media of kind ("video": has a video stream and is not a still image;
 * "audio": has an audio stream and no video; "image": a still picture). Returns 0 or
 * CORE_EBADMEDIA with a reason in err. */
int media_probe_check_kind(const media_probe_t *p, const char *kind, char *err, size_t errcap);
/* The probe as a JSON object text (malloc'd; caller frees): the "probe" object of docs/api.md,
 * {"container","duration" (null for an image),"bit_rate","streams","video":{codec,width,height,
 * fps} (absent without video),"audio":{codec,sample_rate,channels} (absent without audio),
 * "image":true|false}. */
char *media_probe_to_json(const media_probe_t *p);

/* One output file of media_split(). */
typedef struct media_track_file {
    bool present;
    char path[4096];        /* out_prefix + "." + ext */
    char ext[8];            /* m4a, mp3, ogg, opus, flac, wav, mka | mp4, webm, mkv */
    char mime[64];          /* audio/mp4, audio/mpeg, ... | video/mp4, video/webm, ... */
    char codec[32];
    double duration;        /* seconds, of the written stream */
} media_track_file_t;

/* Separates the first audio stream and the first video stream of in_path into two files of their
 * own, in one pass, by stream copy (no re-encoding), each into the container that fits its codec
 * (AAC/ALAC -> .m4a, MP3 -> .mp3, Opus -> .opus, Vorbis -> .ogg, FLAC -> .flac, PCM -> .wav,
 * otherwise .mka; H.264/HEVC/MPEG-4/AV1 -> .mp4, VP8/VP9 -> .webm, otherwise .mkv). Output paths
 * are out_prefix + ".audio." + ext and out_prefix + ".video." + ext. A missing track leaves its
 * struct with present = false. Timestamps start at the original's. On failure, removes whatever
 * it wrote. A still image or cover art is not a video track: a picture alone gives
 * CORE_EBADMEDIA. */
int media_split(const char *in_path, const char *out_prefix, media_track_file_t *audio,
                media_track_file_t *video, char *err, size_t errcap);

/* Decodes the first audio stream to 16 kHz mono signed 16-bit PCM in a WAV file at out_wav.
 * *duration_out gets the seconds written. CORE_EDECODE if the audio is damaged beyond what the
 * decoder conceals. On failure, removes out_wav. */
int media_decode_pcm16k(const char *in_path, const char *out_wav, double *duration_out, char *err,
                        size_t errcap);

/* Writes a JPEG thumbnail of at most max_side pixels on its longer side (never enlarged;
 * max_side 16..4096, else -EINVAL): for a video, a frame about 10% in (at most 5 s); for an
 * image, the image itself; for audio with cover art, the cover. Turned upright by a video's
 * display matrix or a JPEG's EXIF orientation. On failure, removes out_jpeg. */
int media_thumbnail(const char *in_path, const char *out_jpeg, int max_side, char *err,
                    size_t errcap);

/* Encodes pcm[0..n) (mono signed 16-bit at rate Hz, 8000..192000) as Opus (libopus, mono,
 * 24 kHz for input up to 24 kHz, else 48 kHz; 32 kbit/s, VoIP tuning) in an Ogg stream held in
 * memory: *out (malloc'd, the caller frees) of *out_len bytes. n may be 0 (a valid, empty stream). The stream's duration is n/rate
 * (encoder delay trimmed by the pre-skip header, the end by the last granule position).
 * Returns 0, -EINVAL (bad rate), -ENOMEM, or CORE_EBADMEDIA when FFmpeg has no Opus encoder,
 * with a reason in err; on failure *out is NULL and *out_len 0. */
int media_encode_opus_ogg(const int16_t *pcm, size_t n, int rate, uint8_t **out, size_t *out_len,
                          char *err, size_t errcap);

/* ---- video frames (frames.c) ---- */
/* Called with each sampled frame: rgb is width x height 8-bit RGB, stride 3 * width, borrowed for
 * the call only; pts_ms its presentation time from the stream's start. Return 0 to go on, or a
 * negative code to stop: media_sample_frames then returns that code. */
typedef int (*media_frame_fn)(void *ud, const uint8_t *rgb, int width, int height, int64_t pts_ms);
/* Decodes the first video stream of in_path and hands fn the frame on screen at t = 0, 1/rate,
 * 2/rate, ... seconds (rate > 0, at most 60), as the viewer sees it: the container's rotation
 * applied, and frames over max_pixels (<= 0: MEDIA_MAX_PIXELS) scaled down keeping the aspect.
 * At most max_frames frames (<= 0: no bound other than the stream's length). Returns 0 when the
 * stream ends (a file without video: CORE_EBADMEDIA), and fills *n_frames_out (may be NULL). */
int media_sample_frames(const char *in_path, double rate, long long max_pixels, int max_frames,
                        media_frame_fn fn, void *ud, int *n_frames_out, char *err, size_t errcap);
/* Which frame: for each sample time, the nearest of the last frame before it and the first at or
 * after it (a tie: the later); each frame is handed over at most once, so a rate above the frame
 * rate gives every frame once, not duplicates. See src/media/frames.c for damage rules. */
/* Hands fn the one frame media_sample_frames would pick for t = at_ms (ms from the stream's
 * first frame), seeking to the key frame before it. Returns 0 after one call of fn, -ERANGE when
 * at_ms is past the end of the video (fn not called), -EINVAL for at_ms < 0, or the errors of
 * media_sample_frames. */
int media_frame_at(const char *in_path, int64_t at_ms, long long max_pixels, media_frame_fn fn,
                   void *ud, char *err, size_t errcap);

/* Silences FFmpeg's own logging (persona logs the errors it reports). Call once at start. */
void media_init(void);

#endif
