/* asr g2p: letter-to-sound rules that give a CMU ARPAbet pronunciation to a word the general
 * dictionary lacks (names, rare words of an account's texts). An ordered table of grapheme
 * rules, longest match first, with a few context rules (soft c/g, silent final e, y as vowel).
 * espeak-ng's phonemizer is not used here: espeak-ng keeps its voice and state in process-wide
 * globals that src/speech owns behind its own lock, and sharing them from this module would race
 * with synthesis in the same process. Pure function, any thread. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "asr/asr.h"

typedef struct g2p_rule {
    const char *graph;
    const char *phones;
} g2p_rule_t;

/* Longest graphemes first; the first match at a position wins. */
static const g2p_rule_t RULES[] = {
    {"tch", "CH"}, {"sch", "S K"}, {"igh", "AY"}, {"eau", "OW"},
    {"ch", "CH"}, {"sh", "SH"}, {"th", "TH"}, {"ph", "F"}, {"wh", "W"}, {"ck", "K"},
    {"ng", "NG"}, {"gh", "G"}, {"qu", "K W"}, {"kn", "N"}, {"wr", "R"},
    {"ee", "IY"}, {"ea", "IY"}, {"oo", "UW"}, {"ou", "AW"}, {"ow", "OW"}, {"oi", "OY"},
    {"oy", "OY"}, {"ai", "EY"}, {"ay", "EY"}, {"ei", "EY"}, {"ey", "EY"}, {"ie", "IY"},
    {"au", "AO"}, {"aw", "AO"}, {"oa", "OW"}, {"ue", "UW"}, {"ew", "UW"},
    {"ar", "AA R"}, {"er", "ER"}, {"ir", "ER"}, {"ur", "ER"}, {"or", "AO R"},
    {"a", "AE"}, {"b", "B"}, {"c", "K"}, {"d", "D"}, {"e", "EH"}, {"f", "F"}, {"g", "G"},
    {"h", "HH"}, {"i", "IH"}, {"j", "JH"}, {"k", "K"}, {"l", "L"}, {"m", "M"}, {"n", "N"},
    {"o", "AA"}, {"p", "P"}, {"q", "K"}, {"r", "R"}, {"s", "S"}, {"t", "T"}, {"u", "AH"},
    {"v", "V"}, {"w", "W"}, {"x", "K S"}, {"y", "Y"}, {"z", "Z"},
};

static bool vowel(char c) { return c && strchr("aeiouy", c) != NULL; }

static int put(char *out, size_t cap, size_t *len, const char *ph)
{
    size_t n = strlen(ph) + (*len ? 1 : 0);
    if (*len + n + 1 > cap)
        return -ENOSPC;
    if (*len)
        out[(*len)++] = ' ';
    memcpy(out + *len, ph, strlen(ph) + 1);
    *len += strlen(ph);
    return 0;
}

int asr_g2p(const char *word, char *out, size_t cap)
{
    if (!word || !out || !cap)
        return -EINVAL;
    char w[ASR_LM_MAX_WORD + 1];
    size_t n = 0;
    for (const char *s = word; *s; s++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c == '\'')
            continue;
        if (c < 'a' || c > 'z' || n >= ASR_LM_MAX_WORD)
            return -EINVAL;
        w[n++] = c;
    }
    w[n] = 0;
    if (!n)
        return -EINVAL;
    if (n > 2 && w[n - 1] == 'e' && !vowel(w[n - 2]))
        w[--n] = 0; /* silent final e */
    size_t len = 0;
    out[0] = 0;
    int rc;
    for (size_t i = 0; i < n;) {
        if (i > 0 && w[i] == w[i - 1] && !vowel(w[i])) {
            i++; /* doubled consonant: one sound */
            continue;
        }
        const char *ph = NULL;
        size_t glen = 1;
        if ((w[i] == 'c' || w[i] == 'g') && strchr("eiy", w[i + 1] ? w[i + 1] : '#'))
            ph = w[i] == 'c' ? "S" : "JH";
        else if (w[i] == 'y' && i > 0)
            ph = vowel(w[i + 1]) ? "Y" : (i + 1 == n ? "IY" : "IH");
        else
            for (size_t r = 0; r < sizeof RULES / sizeof RULES[0]; r++) {
                size_t gl = strlen(RULES[r].graph);
                if (strncmp(w + i, RULES[r].graph, gl) == 0) {
                    ph = RULES[r].phones;
                    glen = gl;
                    break;
                }
            }
        if ((rc = put(out, cap, &len, ph)) < 0)
            return rc;
        i += glen;
    }
    return 0;
}
