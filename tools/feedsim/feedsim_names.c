/* tools/feedsim/feedsim_names.c - clubs, competitions and surnames the
 * generator draws from. Some carry `&`, `'` and non-ASCII letters on
 * purpose: real names that exercise escaping and UTF-8 end to end. */
#include <stddef.h>

#include "tools/feedsim/feedsim.h"

const struct feedsim_club feedsim_clubs[] = {
    {"Arsenal", "Premier League"},
    {"Chelsea", "Premier League"},
    {"Liverpool", "Premier League"},
    {"Manchester City", "Premier League"},
    {"Manchester United", "Premier League"},
    {"Tottenham Hotspur", "Premier League"},
    {"Newcastle United", "Premier League"},
    {"Aston Villa", "Premier League"},
    {"Brighton & Hove Albion", "Premier League"},
    {"Nott'm Forest", "Premier League"},
    {"West Ham United", "Premier League"},
    {"Everton", "Premier League"},
    {"Real Madrid", "LaLiga"},
    {"FC Barcelona", "LaLiga"},
    {"Atlético Madrid", "LaLiga"},
    {"Sevilla FC", "LaLiga"},
    {"Real Sociedad", "LaLiga"},
    {"Athletic Club", "LaLiga"},
    {"Villarreal CF", "LaLiga"},
    {"Real Betis", "LaLiga"},
    {"FC Bayern München", "Bundesliga"},
    {"Borussia Dortmund", "Bundesliga"},
    {"RB Leipzig", "Bundesliga"},
    {"Bayer 04 Leverkusen", "Bundesliga"},
    {"VfB Stuttgart", "Bundesliga"},
    {"Eintracht Frankfurt", "Bundesliga"},
    {"1. FC Köln", "Bundesliga"},
    {"Borussia Mönchengladbach", "Bundesliga"},
    {"Inter", "Serie A"},
    {"AC Milan", "Serie A"},
    {"Juventus", "Serie A"},
    {"SSC Napoli", "Serie A"},
    {"AS Roma", "Serie A"},
    {"SS Lazio", "Serie A"},
    {"Atalanta", "Serie A"},
    {"ACF Fiorentina", "Serie A"},
    {"Paris Saint-Germain", "Ligue 1"},
    {"Olympique de Marseille", "Ligue 1"},
    {"Olympique Lyonnais", "Ligue 1"},
    {"AS Monaco", "Ligue 1"},
    {"LOSC Lille", "Ligue 1"},
    {"AS Saint-Étienne", "Ligue 1"},
    {"Stade Rennais", "Ligue 1"},
    {"OGC Nice", "Ligue 1"},
};
const size_t feedsim_n_clubs = sizeof(feedsim_clubs) / sizeof(feedsim_clubs[0]);

const char *const feedsim_surnames[] = {
    "Saka",          "Ødegaard",      "Rice",       "Saliba",
    "Havertz",       "Palmer",        "Enzo",       "Caicedo",
    "Salah",         "Van Dijk",      "Szoboszlai", "Haaland",
    "De Bruyne",     "Foden",         "Rodri",      "Fernandes",
    "Rashford",      "Mainoo",        "Son",        "Maddison",
    "Isak",          "Guimarães",     "Watkins",    "McGinn",
    "Mitoma",        "Gibbs-White",   "Bowen",      "Paquetá",
    "Pickford",      "Calvert-Lewin", "Bellingham", "Vinícius",
    "Valverde",      "Lewandowski",   "Yamal",      "Pedri",
    "Griezmann",     "Koke",          "Oyarzabal",  "Williams",
    "Müller",        "Kimmich",       "Musiala",    "Brandt",
    "Openda",        "Wirtz",         "Xhaka",      "Undav",
    "Götze",         "Kainz",         "Lautaro",    "Barella",
    "Leão",          "Pulisic",       "Vlahović",   "Chiesa",
    "Kvaratskhelia", "Dybala",        "Immobile",   "Lookman",
    "Mbappé",        "Dembélé",       "Aubameyang", "Lacazette",
    "Ben Yedder",    "David",         "O'Brien",    "D'Angelo",
    "Škriniar",      "Çalhanoğlu",
};
const size_t feedsim_n_surnames =
    sizeof(feedsim_surnames) / sizeof(feedsim_surnames[0]);
