# Besoin sans réponse (aucune mise en relation après [notifier] unanswered_days).
# Noms : staff_name, why, link, need_title, need_structure, category, commune,
# department, days ("14"), duration ("14 jours", "1 jour"), reported_on
[subject]
Besoin sans réponse depuis {{duration}} : {{need_title}}
[text]
Bonjour {{staff_name}},

Le besoin « {{need_title}} », exprimé par {{need_structure}} ({{category}}, {{commune}}, {{department}}),
signalé le {{reported_on}}, n'a reçu aucune proposition de mise en relation depuis {{duration}}.
Votre réseau connaît peut-être une réponse : {{link}}

{{why}}
[html]
<p>Bonjour {{staff_name}},</p>
<p>Le besoin « <strong>{{need_title}}</strong> », exprimé par {{need_structure}} ({{category}}, {{commune}}, {{department}}),
signalé le {{reported_on}}, n'a reçu <strong>aucune proposition</strong> de mise en relation depuis {{duration}}.</p>
<p><a href="{{link}}">Chercher une réponse</a></p>
<p style="color:#666;font-size:smaller">{{why}}</p>
