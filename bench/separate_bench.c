/* bench/separate_bench.c: times persona's media functions alone, as the media.process job calls
 * them (src/media/media.h), without the server, the database or the upload around them.
 *
 *   separate_bench IN.mp4 OUT_PREFIX [split|pcm|thumb|all]...
 *
 * Prints one line per step: "<step> s=<wall seconds> cpu=<cpu seconds> ..." on stdout. The output
 * files are OUT_PREFIX.audio.<ext>, OUT_PREFIX.video.<ext>, OUT_PREFIX.pcm.wav and
 * OUT_PREFIX.thumb.jpg, left in place for checking. Exit status 1 if a step fails. */
#include "core/core.h"
#include "media/media.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int run_step(const char *step, const char *in, const char *prefix)
{
    char err[512] = "", path[4096];
    double t0 = now_s(), c0 = cpu_s();
    int rc;
    if (!strcmp(step, "split")) {
        media_track_file_t audio, video;
        rc = media_split(in, prefix, &audio, &video, err, sizeof err);
        double t = now_s() - t0, c = cpu_s() - c0;
        if (rc == 0) {
            printf("split s=%.3f cpu=%.3f audio=%s audio_duration=%.3f video=%s "
                   "video_duration=%.3f\n",
                   t, c, audio.present ? audio.path : "-", audio.duration,
                   video.present ? video.path : "-", video.duration);
        }
    } else if (!strcmp(step, "pcm")) {
        double secs = 0;
        snprintf(path, sizeof path, "%s.pcm.wav", prefix);
        rc = media_decode_pcm16k(in, path, &secs, err, sizeof err);
        if (rc == 0)
            printf("pcm s=%.3f cpu=%.3f out=%s duration=%.3f\n", now_s() - t0, cpu_s() - c0, path,
                   secs);
    } else if (!strcmp(step, "thumb")) {
        snprintf(path, sizeof path, "%s.thumb.jpg", prefix);
        rc = media_thumbnail(in, path, 320, err, sizeof err);
        if (rc == 0)
            printf("thumb s=%.3f cpu=%.3f out=%s\n", now_s() - t0, cpu_s() - c0, path);
    } else {
        fprintf(stderr, "separate_bench: unknown step '%s' (split, pcm, thumb, all)\n", step);
        return 2;
    }
    if (rc != 0) {
        fprintf(stderr, "separate_bench: %s failed: %s (%s)\n", step, err, core_strerror(rc));
        return 1;
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: separate_bench IN OUT_PREFIX [split|pcm|thumb|all]...\n");
        return 2;
    }
    media_init();
    int status = 0;
    static const char *all[] = {"split", "pcm", "thumb"};
    if (argc == 3) {
        for (int i = 0; i < 3 && !status; i++)
            status = run_step(all[i], argv[1], argv[2]);
        return status;
    }
    for (int a = 3; a < argc && !status; a++) {
        if (!strcmp(argv[a], "all")) {
            for (int i = 0; i < 3 && !status; i++)
                status = run_step(all[i], argv[1], argv[2]);
        } else {
            status = run_step(argv[a], argv[1], argv[2]);
        }
    }
    return status;
}
